// Command calcserver is the mcptest calc MCP server on stdio, for tests
// that need a real server binary (mcptest.BuildCalcServer builds it).
//
// Usage:
//
//	calcserver [-log FILE]
//
// Each call is appended to FILE (default: $COMETBOT_MCPTEST_LOG) as a JSON
// line; see mcptest.Entry.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/cometbot/cometbot/internal/mcp/mcptest"
)

func main() {
	logPath := flag.String("log", os.Getenv(mcptest.EnvLog), "append each call to this file as a JSON line")
	flag.Parse()
	fmt.Fprintln(os.Stderr, "calc: serving on stdio")
	if err := mcptest.RunStdio(context.Background(), mcptest.Options{LogPath: *logPath}); err != nil {
		fmt.Fprintln(os.Stderr, "calc:", err)
		os.Exit(1)
	}
}
