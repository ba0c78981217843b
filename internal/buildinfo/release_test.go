package buildinfo

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// scripts/release.sh builds a static binary for one target (the host's)
// that reports the release version, and a SHA256SUMS file that matches it.
func TestReleaseScript(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks an ELF binary")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "release.sh")
	out := t.TempDir()
	target := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command(script, "v0.0.0-test", out)
	cmd.Env = append(os.Environ(), "TARGETS="+target)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, b)
	}
	bin := filepath.Join(out, "domainguard-v0.0.0-test-"+runtime.GOOS+"-"+runtime.GOARCH)
	version, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	if !strings.HasPrefix(string(version), "domainguard v0.0.0-test ") {
		t.Errorf("version = %q, want the stamped v0.0.0-test", version)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): not a static CGO_ENABLED=0 build")
		}
	}

	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:]) + "  " + filepath.Base(bin)
	if strings.TrimSpace(string(sums)) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}

	if b, err := exec.Command(script, "1.2").CombinedOutput(); err == nil || !strings.Contains(string(b), "v1.2.3") {
		t.Errorf("release.sh 1.2: %v %s, want a refusal asking for a v-tag", err, b)
	}
}
