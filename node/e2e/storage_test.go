package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/meshwork/meshwork/blobs/crypt"
	"github.com/meshwork/meshwork/node"
	"github.com/meshwork/meshwork/node/internal/wire"
	"github.com/meshwork/meshwork/node/vault"
)

// storageFolder is a folder with distinctive names and contents: small
// text files, a file in a subdirectory, and a 9 MiB file of repeated text,
// which the chunker cuts into full 4 MiB chunks (sealed, 17 bytes over
// blobs.MaxChunkSize).
type storageFolder struct {
	files   map[string][]byte // relative path → content
	needles [][]byte          // must not appear in a storage peer's state
}

func writeStorageFolder(t *testing.T, dir string) storageFolder {
	t.Helper()
	sf := storageFolder{files: map[string][]byte{
		"zanzibar-treasure-map.txt":            []byte("the treasure lies under the old fig tree, says zanzibar\n"),
		"plans/quokka-merger-confidential.md":  []byte("# quokka merger\nconfidential: the board votes on tuesday\n"),
		"photos/2024/okapi-birthday-party.txt": []byte("okapi birthday party, forty guests, one cake\n"),
		"big/narwhal-archive.bin":              bytes.Repeat([]byte("narwhal archive line of plaintext that repeats; "), 9<<20/48),
	}}
	for rel, b := range sf.files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		sf.needles = append(sf.needles, []byte(filepath.Base(rel)), []byte(strings.TrimSuffix(filepath.Base(rel), filepath.Ext(rel))))
		sf.needles = append(sf.needles, b[:min(len(b), 40)])
	}
	return sf
}

// presentIn reports whether every file is in dir with its content.
func (sf storageFolder) presentIn(dir string) bool {
	for rel, want := range sf.files {
		got, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil || !bytes.Equal(got, want) {
			return false
		}
	}
	return true
}

// grepState returns the needles found in any file under root, with where.
func grepState(t *testing.T, root string, needles [][]byte) []string {
	t.Helper()
	var found []string
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, n) {
				found = append(found, fmt.Sprintf("%q in %s", n, p))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no file under %s to search", root)
	}
	return found
}

// folderStorage returns the storage info of folder name on d.
func folderStorage(t *testing.T, d *daemon, name string) *node.StorageInfo {
	t.Helper()
	for _, f := range d.status().Folders {
		if f.Name == name {
			return f.Storage
		}
	}
	return nil
}

func storageUsage(t *testing.T, d *daemon) node.StorageStatus {
	t.Helper()
	var st node.StorageStatus
	if err := json.Unmarshal([]byte(d.mesh("storage", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// storagePeerHandOff: A syncs a folder to the storage peer S and stops; B,
// started only after A stopped, joins with A's code (redeemed at S) and gets
// the whole folder from S alone. Then S's whole state directory (and
// extraState, e.g. an S3 server's data) is searched for the plaintext.
func storagePeerHandOff(t *testing.T, sArgs []string, extraState string) {
	a := startDaemon(t, "a")
	s := startDaemon(t, "s", append([]string{"--role", "storage"}, sArgs...)...)
	a.mesh("init", "--name", "alpha")
	// A storage peer refuses a code that carries the mesh content key.
	if _, errOut, err := s.run("join", a.invite(), "--name", "vault"); err == nil || !strings.Contains(errOut, "mesh invite --storage") {
		t.Fatalf("storage peer accepted a code with the mesh key: err %v, %s", err, errOut)
	}
	s.mesh("join", a.invite("--storage"), "--name", "vault")
	idS := s.status().DeviceID
	waitFor(t, 20*time.Second, "a sees the storage peer online", func() bool { return a.online(idS) })
	if _, errOut, err := s.run("folder", "add", t.TempDir(), "--name", "x"); err == nil || !strings.Contains(errOut, "storage peer") {
		t.Fatalf("a storage peer shared a folder: err %v, %s", err, errOut)
	}

	dirA := filepath.Join(t.TempDir(), "docs-a")
	sf := writeStorageFolder(t, dirA)
	added := time.Now()
	a.mesh("folder", "add", dirA, "--name", "docs")
	a.mesh("wait", "docs", "--timeout", "60s")
	waitFor(t, 60*time.Second, "the storage peer holds every file of a", func() bool {
		si := folderStorage(t, a, "docs")
		return si != nil && si.Files == len(sf.files) && si.HeldFiles == si.Files && si.PeerID == idS
	})
	t.Logf("the storage peer holds every file of a %v after folder add", time.Since(added).Round(time.Millisecond))
	if out := a.mesh("status"); !strings.Contains(out, fmt.Sprintf("storage peer vault holds %d of %d files of docs", len(sf.files), len(sf.files))) {
		t.Fatalf("mesh status on a does not show what the storage peer holds:\n%s", out)
	}
	code := a.invite()
	if !strings.Contains(code, "-mk1") {
		t.Fatalf("a device's invite code lacks the mesh content key: %s", code)
	}
	a.stop()

	b := startDaemon(t, "b")
	joined := time.Now()
	b.mesh("join", code, "--name", "bravo")
	if !b.online(idS) {
		t.Fatal("b joined but is not connected to the storage peer")
	}
	if !s.logContains("device joined with an invite") || !s.logContains("bravo") {
		t.Fatal("the storage peer's log does not show b's invite redeemed there")
	}
	waitFor(t, 30*time.Second, "b learns the folder from the storage peer", func() bool {
		return strings.Contains(b.mesh("folder", "list"), "docs")
	})
	dirB := filepath.Join(t.TempDir(), "docs-b")
	b.mesh("folder", "join", "docs", dirB)
	t.Logf("b knows the folder %v after its join started", time.Since(joined).Round(time.Millisecond))
	waitFor(t, 90*time.Second, "b has every file", func() bool { return sf.presentIn(dirB) })
	t.Logf("b has every file %v after its join started", time.Since(joined).Round(time.Millisecond))
	b.mesh("wait", "docs", "--timeout", "60s")
	if diff, same := sameTrees(treeOf(t, dirA), treeOf(t, dirB)); !same {
		t.Fatalf("b differs from a: %s", diff)
	}
	if st := b.status(); st.Online != 1 || st.Members != 3 {
		t.Fatalf("b should see 3 members, only the storage peer online: %+v", st)
	}
	if !b.logContains("storage peer: fetched blob") {
		t.Fatal("b's log does not show a fetch from the storage peer")
	}
	st := storageUsage(t, s)
	if st.Usage == nil || st.Usage.Chunks == 0 || st.Usage.Records == 0 {
		t.Fatalf("storage peer usage: %+v", st)
	}

	// The search works: A's database holds the names in plaintext.
	if found := grepState(t, a.home, sf.needles); len(found) == 0 {
		t.Fatal("search of a's state found no plaintext name: the search cannot be trusted")
	}
	chunkDir := filepath.Join(s.home, "vault")
	if extraState != "" {
		chunkDir = extraState
	}
	{ // a full 4 MiB chunk, sealed, is kept whole
		full := false
		_ = filepath.WalkDir(chunkDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				fi, _ := d.Info()
				full = full || fi.Size() == crypt.MaxSealedChunkSize
			}
			return err
		})
		if !full {
			t.Fatalf("no sealed chunk of %d bytes under %s", crypt.MaxSealedChunkSize, chunkDir)
		}
	}
	s.stop() // flush its database
	if found := grepState(t, s.home, sf.needles); len(found) > 0 {
		t.Fatalf("the storage peer's state holds plaintext:\n%s", strings.Join(found, "\n"))
	}
	if extraState != "" {
		if found := grepState(t, extraState, sf.needles); len(found) > 0 {
			t.Fatalf("the storage peer's object store holds plaintext:\n%s", strings.Join(found, "\n"))
		}
	}
}

// TestStoragePeerHandOff: see storagePeerHandOff; chunks on the storage
// peer's disk.
func TestStoragePeerHandOff(t *testing.T) {
	storagePeerHandOff(t, nil, "")
}

// TestStoragePeerQuota: with a quota smaller than the folder, the storage
// peer holds at most the quota (the newest files that fit), and a device
// online together with A gets every file from A.
func TestStoragePeerQuota(t *testing.T) {
	const quota = 700 << 10
	a := startDaemon(t, "a")
	s := startDaemon(t, "s", "--role", "storage", "--quota", fmt.Sprint(quota))
	a.mesh("init", "--name", "alpha")
	s.mesh("join", a.invite("--storage"), "--name", "vault")
	idS := s.status().DeviceID
	waitFor(t, 20*time.Second, "a sees the storage peer online", func() bool { return a.online(idS) })

	dirA := filepath.Join(t.TempDir(), "docs-a")
	rng := rand.New(rand.NewPCG(7, 7))
	const n, size = 6, 200 << 10
	base := time.Now().Add(-time.Hour)
	for i := range n {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		p := filepath.Join(dirA, fmt.Sprintf("file-%d.bin", i))
		write(t, p, string(b))
		mt := base.Add(time.Duration(i) * time.Minute) // file-5 is the newest
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	a.mesh("folder", "add", dirA, "--name", "docs")
	a.mesh("wait", "docs", "--timeout", "60s")
	var si *node.StorageInfo
	waitFor(t, 60*time.Second, "a has offered every file to the storage peer", func() bool {
		si = folderStorage(t, a, "docs")
		return si != nil && si.Files == n && si.HeldFiles > 0
	})
	t.Logf("storage peer holds %d of %d files (%d bytes, quota %d)", si.HeldFiles, n, si.HeldBytes, quota)
	if si.HeldFiles >= n || si.HeldBytes > quota {
		t.Fatalf("storage peer holds %d of %d files, %d bytes, quota %d", si.HeldFiles, n, si.HeldBytes, quota)
	}
	u := storageUsage(t, s).Usage
	if u == nil || u.Used > quota || u.Used == 0 || u.Quota != quota {
		t.Fatalf("storage peer usage %+v, quota %d", u, quota)
	}
	var onDisk int64
	_ = filepath.WalkDir(filepath.Join(s.home, "vault"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			onDisk += fi.Size()
		}
		return err
	})
	t.Logf("usage %+v, on disk %d", u, onDisk)
	if onDisk == 0 || onDisk > quota {
		t.Fatalf("storage peer keeps %d bytes of chunks on disk, quota %d", onDisk, quota)
	}

	// C comes online together with A: it gets every file, from A.
	c := startDaemon(t, "c")
	c.mesh("join", a.invite(), "--name", "charlie")
	waitFor(t, 20*time.Second, "c sees the folder", func() bool { return strings.Contains(c.mesh("folder", "list"), "docs") })
	dirC := filepath.Join(t.TempDir(), "docs-c")
	c.mesh("folder", "join", "docs", dirC)
	c.mesh("wait", "docs", "--timeout", "60s")
	if diff, same := sameTrees(treeOf(t, dirA), treeOf(t, dirC)); !same {
		t.Fatalf("c differs from a: %s", diff)
	}
	if served := a.status().Transfer.BytesServed; served < int64(n-si.HeldFiles)*size {
		t.Fatalf("a served %d bytes; the %d files the storage peer lacks are %d bytes", served, n-si.HeldFiles, (n-si.HeldFiles)*size)
	}

	// A newer file makes room for itself: the oldest file held is dropped.
	heldBefore := si.HeldFiles
	newest := filepath.Join(dirA, fmt.Sprintf("file-%d.bin", n))
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(rng.Uint32())
	}
	write(t, newest, string(b))
	a.mesh("wait", "docs", "--timeout", "60s")
	waitFor(t, 30*time.Second, "the storage peer holds the new file", func() bool {
		si = folderStorage(t, a, "docs")
		return si != nil && si.Files == n+1 && si.HeldFiles == heldBefore
	})
	if u := storageUsage(t, s).Usage; u.Used > quota {
		t.Fatalf("storage peer usage %+v over the quota %d", u, quota)
	}
	if !a.logContains("dropped an older file's content to make room") {
		t.Fatal("a's log does not show a file dropped for a newer one")
	}

	// A deleted file's content goes first: file-5 (held) is deleted, then
	// file-7 comes and takes its room; file-4, older but live, stays.
	if err := os.Remove(filepath.Join(dirA, "file-5.bin")); err != nil {
		t.Fatal(err)
	}
	for j := range b {
		b[j] = byte(rng.Uint32())
	}
	write(t, filepath.Join(dirA, fmt.Sprintf("file-%d.bin", n+1)), string(b))
	a.mesh("wait", "docs", "--timeout", "60s")
	waitFor(t, 30*time.Second, "the storage peer holds file-7", func() bool {
		si = folderStorage(t, a, "docs")
		return si != nil && si.Files == n+1 && si.HeldFiles == heldBefore
	})
	if !a.logContains("dropped a deleted file's content to make room") {
		t.Fatal("a's log does not show the deleted file's content dropped first")
	}

	// Newest first: with A and C offline, D (metadata mode) can fetch the
	// newest files from the storage peer, and not the oldest.
	code := a.invite()
	a.stop()
	c.stop()
	d := startDaemon(t, "d")
	d.mesh("join", code, "--name", "delta")
	waitFor(t, 30*time.Second, "d learns the folder from the storage peer", func() bool {
		return strings.Contains(d.mesh("folder", "list"), "docs")
	})
	dirD := filepath.Join(t.TempDir(), "docs-d")
	d.mesh("folder", "join", "docs", dirD, "--mode", "metadata")
	waitFor(t, 30*time.Second, "d knows every name", func() bool { return len(folderFiles(t, d, "docs")) == n+1 })
	if heldBefore != 3 {
		t.Fatalf("the quota was meant to hold 3 files, it held %d", heldBefore)
	}
	for _, name := range []string{"file-7.bin", "file-6.bin", "file-4.bin"} {
		d.mesh("fetch", filepath.Join(dirD, name))
		want, _ := os.ReadFile(filepath.Join(dirA, name))
		if got, err := os.ReadFile(filepath.Join(dirD, name)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s fetched from the storage peer: %d bytes, want %d (%v)", name, len(got), len(want), err)
		}
	}
	for _, name := range []string{"file-0.bin", "file-3.bin"} { // file-3 was dropped for file-6
		if _, errOut, err := d.run("fetch", filepath.Join(dirD, name)); err == nil {
			t.Fatalf("fetched %s with only the storage peer online, which should not hold it", name)
		} else if !strings.Contains(errOut, name) {
			t.Fatalf("the fetch error does not name the file: %s", errOut)
		}
	}
}

// TestStoragePeerS3: the hand-off with the storage peer's chunks in an
// S3-compatible server (versitygw, started here; skipped without it unless
// MESH_TEST_REQUIRE_S3=1). The server's data directory is searched too.
func TestStoragePeerS3(t *testing.T) {
	endpoint, dataDir := startVersitygw(t)
	cl, err := minio.New(strings.TrimPrefix(endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(s3Access, s3Secret, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.MakeBucket(t.Context(), "meshstore", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	// The endpoint from the environment, the credentials from a config
	// file (both ways work; the environment wins where both are set).
	t.Setenv("MESH_S3_ENDPOINT", endpoint)
	t.Setenv("MESH_S3_ACCESS_KEY", "")
	t.Setenv("MESH_S3_SECRET_KEY", "")
	conf := filepath.Join(t.TempDir(), "meshd.json")
	b, _ := json.Marshal(node.ConfigFile{Store: "s3://meshstore/peers/s1", S3: &node.S3ConfigFile{AccessKey: s3Access, SecretKey: s3Secret}})
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	storagePeerHandOff(t, []string{"--config", conf}, dataDir)
	n := 0
	for o := range cl.ListObjects(t.Context(), "meshstore", minio.ListObjectsOptions{Prefix: "peers/s1/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no chunk object in the bucket")
	}
}

const (
	s3Access = "meshtestaccess"
	s3Secret = "meshtestsecret0123456789"
)

// startVersitygw runs versitygw (from $VERSITYGW, PATH or GOPATH/bin) on a
// free loopback port over a fresh directory, as blobs/s3store's tests do.
func startVersitygw(t *testing.T) (endpoint, dataDir string) {
	t.Helper()
	bin := os.Getenv("VERSITYGW")
	if bin == "" {
		bin, _ = exec.LookPath("versitygw")
	}
	if bin == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			p := filepath.Join(strings.TrimSpace(string(out)), "bin", "versitygw")
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		msg := "versitygw not found in $VERSITYGW, PATH or $(go env GOPATH)/bin; install it with: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
		if os.Getenv("MESH_TEST_REQUIRE_S3") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dataDir = t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var out bytes.Buffer
	cmd := exec.Command(bin, "--port", addr, "--access", s3Access, "--secret", s3Secret, "--quiet", "posix", dataDir)
	cmd.Stdout, cmd.Stderr, cmd.Dir = &out, &out, dataDir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	hc := &http.Client{Timeout: time.Second}
	waitFor(t, 15*time.Second, "versitygw answering on "+addr, func() bool {
		select {
		case <-exited:
			t.Fatalf("versitygw exited: %s", out.String())
		default:
		}
		resp, err := hc.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close() // any answer (403) means it is up
		}
		return err == nil
	})
	return "http://" + addr, dataDir
}

// TestStoragePeerRefusesStrangers: the vault protocol answers members only,
// and a storage peer lists no folder even when the mesh has one.
func TestStoragePeerRefusesStrangers(t *testing.T) {
	a := startDaemon(t, "a")
	s := startDaemon(t, "s", "--role", "storage")
	a.mesh("init", "--name", "alpha")
	s.mesh("join", a.invite("--storage"), "--name", "vault")
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newPlainHost(t, key)
	ai := addrInfo(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, ai); err != nil {
		t.Fatalf("stranger cannot connect: %v", err)
	}
	st, err := h.NewStream(ctx, ai.ID, vault.Proto)
	if err != nil {
		t.Fatalf("the vault protocol is not even offered: %v", err) // it is, to members
	}
	_ = wire.WriteFrame(st, vault.OpList, []byte("obj/"))
	_ = st.CloseWrite()
	if _, rerr := bufio.NewReader(st).ReadByte(); rerr == nil {
		t.Fatal("a non-member got an answer from the vault")
	}
	st.Close()
	if !s.logContains("refused stream from non-member") {
		t.Fatal("the storage peer's log does not show the refusal")
	}
	// It keeps no plaintext object: not even the catalog.
	a.mesh("folder", "add", t.TempDir(), "--name", "docs")
	a.mesh("wait", "docs", "--timeout", "60s")
	if out := s.mesh("status", "--json"); strings.Contains(out, `"folders":[{`) {
		t.Fatalf("a storage peer lists folders: %s", out)
	}
}
