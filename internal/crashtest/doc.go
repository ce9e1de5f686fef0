// Package crashtest runs the real cometbot binary against the loopback
// fakes of Slack (Socket Mode and the HTTP Events API), Discord and the
// gateway, kills it with SIGKILL at random points of its replies, restarts
// it on the same database file and checks what users would see: every
// accepted message answered once, in its own message, with nothing frozen
// or duplicated. Its tests are the package; there is no non-test code.
package crashtest
