// Command mesh controls the local Meshwork daemon (meshd).
package main

import (
	"os"

	"github.com/meshwork/meshwork/node/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
