// Command rolesbin is skiffd's hidden roles without the daemon: a small
// static binary for tests that need the roles in a static executable (the
// --init reaper runs inside containers, which have no dynamic loader) and
// for measuring what the shim costs on its own.
package main

import (
	"fmt"
	"os"

	"skiffd/internal/runtime/roles"
)

func main() {
	roles.Dispatch()
	fmt.Fprintln(os.Stderr, "usage: rolesbin shim|init|exec-helper|reaper ...")
	os.Exit(2)
}
