package main

import (
	"bytes"
	"regexp"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run --version = %d, want 0; stderr: %s", code, stderr.String())
	}
	if want := regexp.MustCompile(`^deskcast \S+ \(commit \S+\)\n$`); !want.MatchString(stdout.String()) {
		t.Errorf("run --version printed %q, want a line matching %s", stdout.String(), want)
	}
	if stderr.Len() != 0 {
		t.Errorf("run --version wrote to stderr: %q", stderr.String())
	}
}
