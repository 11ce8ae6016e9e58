//go:build !unix

package folder

import "io/fs"

// inode returns 0: inode numbers are not used on this platform.
func inode(fs.FileInfo) uint64 { return 0 }
