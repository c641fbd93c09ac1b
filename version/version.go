// Package version says which release and commit this binary was built from.
package version

import (
	"regexp"
	"runtime/debug"
	"strings"
)

// Version is the release, FyneApp.toml's Version (e.g. "0.4.0"). The Makefile sets it with
// -ldflags "-X github.com/deskcast/deskcast/version.Version=…". Without that it is the module's
// version when built by `go install github.com/deskcast/deskcast@vX.Y.Z`, else "devel".
var Version = "devel"

// revision and modified are set by the Makefile with -ldflags -X, from git: the full commit hash,
// and "true" when the work tree had changes. Go's own VCS stamping (runtime/debug's vcs.revision
// and vcs.modified) is the fallback; cmd/go leaves it out in a git worktree (it looks for a .git
// directory, and a worktree has a .git file) and with -buildvcs=false.
var (
	revision string
	modified string
)

// commit is what Commit returns, worked out once at start-up.
var commit string

// pseudo matches the end of a pseudo-version (v0.0.0-20260101120000-abcdef123456), which go build
// gives an untagged commit since Go 1.24: not a release, and its hash is Commit's job.
var pseudo = regexp.MustCompile(`[0-9]{14}-[0-9a-f]{12}(\+dirty)?$`)

func init() {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	if v := bi.Main.Version; Version == "devel" && strings.HasPrefix(v, "v") && !pseudo.MatchString(v) {
		Version = strings.TrimSuffix(v[1:], "+dirty")
	}
	rev, mod := revision, modified == "true"
	if rev == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				mod = s.Value == "true"
			}
		}
	}
	commit = describe(rev, mod)
}

// describe shortens a revision to 12 hex digits and marks it dirty.
func describe(rev string, modified bool) string {
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "-dirty"
	}
	return rev
}

// Commit returns the commit this binary was built from: its first 12 hex digits, with "-dirty"
// when the work tree had uncommitted changes; "" when it is not known (a build from a source
// archive, or with -buildvcs=false and no -ldflags -X).
func Commit() string { return commit }

// String returns the version and commit on one line, e.g. "0.4.0 (commit 0123456789ab)" or
// "0.4.0 (commit unknown)": what --version prints after the program's name.
func String() string {
	c := commit
	if c == "" {
		c = "unknown"
	}
	return Version + " (commit " + c + ")"
}
