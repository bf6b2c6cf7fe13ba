//go:build !unix

package gateway

import (
	"io/fs"
	"strconv"
)

// fileOwner: this platform has no owner in Stat; owners are not checked.
func fileOwner(fs.FileInfo) (uint32, bool) { return 0, false }

func userName(uid uint32) string { return "uid " + strconv.FormatUint(uint64(uid), 10) }

func loginName(uid int) string { return strconv.Itoa(uid) }

func groupName(gid int) string { return strconv.Itoa(gid) }
