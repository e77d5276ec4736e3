package runtime

// Test hooks for the external test package.

func WriteArtifactForTest(path string, payload []byte) error { return writeArtifact(path, payload) }

func CheckStoreLayoutForTest() error { return checkStoreLayout() }

func CheckMemoryLayoutForTest() error { return checkMemoryLayout() }
