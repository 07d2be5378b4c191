// Loaded before every test file (.mocharc.json). The AWS SDK warns on Node 20
// that releases from 2027 on need Node 22; the pinned SDK works, and the warning
// would bury the test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
