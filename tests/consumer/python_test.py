"""The shmdict Python package from another workspace: found, loaded, working."""

import os
import secrets
import unittest

# A sanitized libshmdict.so cannot be loaded into Python (this workspace has no
# sanitizer configs, but a caller may pass its own flags).
if not os.environ.get("SHMDICT_SANITIZED"):
    import shmdict


@unittest.skipIf(os.environ.get("SHMDICT_SANITIZED"), "sanitized build")
class PythonTest(unittest.TestCase):

    def test_set_get_increment(self):
        # The library comes from the runfiles of @shmdict.
        self.assertTrue(os.path.exists(shmdict.library_path), shmdict.library_path)
        name = "shmdict-consumer-py-%d-%s" % (os.getpid(), secrets.token_hex(4))
        self.addCleanup(shmdict.unlink, name, True)
        with shmdict.SharedDict(name, capacity=16) as d:
            d["config"] = {"retries": 3}
            self.assertEqual(shmdict.SharedDict(name, create=False)["config"],
                             {"retries": 3})
            self.assertEqual(d.increment("hits"), 1)
            self.assertEqual(d.increment("hits"), 2)


if __name__ == "__main__":
    unittest.main()
