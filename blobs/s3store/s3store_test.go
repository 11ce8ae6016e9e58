package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
)

const (
	versitygwModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	testAccess      = "meshtestaccess"
	testSecret      = "meshtestsecret0123456789"
)

// testServer is a versitygw child process serving a fresh directory.
type testServer struct {
	cfg Config
	cl  *minio.Client
}

var (
	gwOnce sync.Once
	gwPath string
)

// findVersitygw looks for the binary in $VERSITYGW, PATH and
// $(go env GOPATH)/bin.
func findVersitygw() string {
	gwOnce.Do(func() {
		if p := os.Getenv("VERSITYGW"); p != "" {
			gwPath = p
			return
		}
		if p, err := exec.LookPath("versitygw"); err == nil {
			gwPath = p
			return
		}
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			return
		}
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "versitygw")
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				gwPath = p
				return
			}
		}
	})
	return gwPath
}

// startServer starts versitygw on a free loopback port, waits until it
// answers HTTP, and kills it at cleanup. Without the binary the test is
// skipped, or fails if MESH_TEST_REQUIRE_S3=1 (set it in CI).
func startServer(t *testing.T) *testServer {
	t.Helper()
	bin := findVersitygw()
	if bin == "" {
		msg := "versitygw not found in $VERSITYGW, PATH or $(go env GOPATH)/bin; install it with: go install " + versitygwModule
		if os.Getenv("MESH_TEST_REQUIRE_S3") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var lastErr error
	for range 3 { // the free port may be taken between probe and start
		srv, err := tryStart(t, bin)
		if err == nil {
			return srv
		}
		lastErr = err
	}
	t.Fatalf("start versitygw: %v", lastErr)
	return nil
}

func tryStart(t *testing.T, bin string) (*testServer, error) {
	dataDir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin, "--port", addr, "--access", testAccess, "--secret", testSecret, "--quiet", "posix", dataDir)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = dataDir
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("versitygw exited: %s", out.String())
		default:
		}
		if resp, err := hc.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close() // any answer (403) means it is up
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw did not answer on %s within 15s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(stop)
	cfg := Config{Endpoint: "http://" + addr, AccessKey: testAccess, SecretKey: testSecret}
	cl, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{cfg: cfg, cl: cl}, nil
}

func (s *testServer) makeBucket(t *testing.T, name string) {
	t.Helper()
	if err := s.cl.MakeBucket(t.Context(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
}

func TestS3Conformance(t *testing.T) {
	srv := startServer(t)
	srv.makeBucket(t, "mesh")
	cfg := srv.cfg
	cfg.MaxChunkSize = 5 << 20 // the suite puts chunks of this size: 5 MiB objects
	st, err := Open(t.Context(), "s3://mesh/peers/p1", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Objects outside the layout and under other prefixes are not chunks.
	for _, k := range []string{"peers/p1/README", "peers/p1/zz/zz/chunkzz", "peers/p2/uj/ya/x", "other"} {
		if _, err := srv.cl.PutObject(t.Context(), "mesh", k, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testChunkStore(t, st, suiteOpts{
		maxSize:  cfg.MaxChunkSize,
		notFound: ErrNotFound,
		corrupt: func(t *testing.T, id blobs.ChunkID) {
			junk := []byte("corrupted at rest")
			if _, err := srv.cl.PutObject(t.Context(), "mesh", st.Key(id), bytes.NewReader(junk), int64(len(junk)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	})

	// Another prefix in the same bucket is another store.
	other, err := Open(t.Context(), "s3://mesh/peers/p2", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := other.Enumerate(t.Context(), func(blobs.ChunkID, uint32) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("other prefix enumerates %d chunks, %v", n, err)
	}
}

func TestS3CorruptObjectMismatch(t *testing.T) {
	srv := startServer(t)
	srv.makeBucket(t, "mesh")
	st, err := Open(t.Context(), "s3://mesh", srv.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	data, id := chunkOf(1, 4096)
	if err := st.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Key(id), id.String()[5:7]+"/"+id.String()[7:9]+"/chunk") {
		t.Fatalf("key %s", st.Key(id))
	}
	// Same length, one bit flipped: only the hash can tell.
	bad := bytes.Clone(data)
	bad[100] ^= 1
	if _, err := srv.cl.PutObject(ctx, "mesh", st.Key(id), bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Get(ctx, id, nil)
	if !errors.Is(err, blobs.ErrMismatch) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a flipped object: %v", err)
	}
	if _, err := srv.cl.StatObject(ctx, "mesh", st.Key(id), minio.StatObjectOptions{}); err == nil {
		t.Fatal("corrupt object not deleted")
	}
	// An oversized object is refused without reading it all.
	small, err := Open(ctx, "s3://mesh", Config{Endpoint: srv.cfg.Endpoint, AccessKey: testAccess, SecretKey: testSecret, MaxChunkSize: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if _, err := small.Get(ctx, id, nil); !errors.Is(err, blobs.ErrMalformed) {
		t.Fatalf("Get over the size limit: %v", err)
	}
}

// TestS3SealedChunks is the storage peer's path: a device seals chunks,
// the store keeps them by ciphertext ID, and only a key holder opens them.
func TestS3SealedChunks(t *testing.T) {
	srv := startServer(t)
	srv.makeBucket(t, "peer")
	st, err := Open(t.Context(), "s3://peer/store", srv.cfg, nil) // default limit: sealed 4 MiB chunks
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	k, err := crypt.NewFolderKey()
	if err != nil {
		t.Fatal(err)
	}
	var m crypt.Manifest
	plains := map[blobs.ChunkID][]byte{}
	for i, n := range []int{blobs.MaxChunkSize, 300 << 10, blobs.MaxChunkSize} {
		p, pid := chunkOf(uint64(i%2), n) // chunks 0 and 2 are equal: one object
		sealed, ctID, err := crypt.SealChunk(k, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, ctID, sealed); err != nil {
			t.Fatal(err)
		}
		plains[pid] = p
		m.Chunks = append(m.Chunks, crypt.Chunk{Plain: blobs.ChunkRef{ID: pid, Size: uint32(n)}, Cipher: ctID})
	}
	sm, err := crypt.SealManifest(k, m)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	if err := st.Enumerate(ctx, func(id blobs.ChunkID, size uint32) error { count++; return nil }); err != nil || count != 2 {
		t.Fatalf("stored %d objects (%v), want 2 (dedup)", count, err)
	}
	// What the storage peer can check without the key.
	pub, err := crypt.CipherChunks(sm)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pub {
		if got, err := st.Get(ctx, c.ID, nil); err != nil || len(got) != int(c.Size) {
			t.Fatalf("storage peer verify %v: %v", c.ID, err)
		}
	}
	// A member device opens everything.
	om, err := crypt.OpenManifest(k, sm)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range om.Chunks {
		sealed, err := st.Get(ctx, c.Cipher, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := crypt.OpenChunk(k, c.Plain.ID, sealed)
		if err != nil || !bytes.Equal(p, plains[c.Plain.ID]) {
			t.Fatalf("open %v: %v", c.Plain.ID, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	srv := startServer(t)
	ctx := t.Context()
	if _, err := Open(ctx, "s3://missing-bucket/x", srv.cfg, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing bucket: %v", err)
	}
	srv.makeBucket(t, "mesh")
	bad := srv.cfg
	bad.SecretKey = "wrong"
	if _, err := Open(ctx, "s3://mesh", bad, nil); err == nil {
		t.Fatal("wrong secret accepted")
	}
	ctx2, cancel := context.WithTimeout(ctx, time.Second) // minio-go retries refused connections
	defer cancel()
	if _, err := Open(ctx2, "s3://mesh", Config{Endpoint: "http://127.0.0.1:1", AccessKey: "a", SecretKey: "b"}, nil); err == nil {
		t.Fatal("dead endpoint accepted")
	}
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct{ in, bucket, prefix string }{
		{"s3://mesh", "mesh", ""},
		{"s3://mesh/", "mesh", ""},
		{"s3://mesh/a/b/", "mesh", "a/b"},
		{"s3://my.bucket-1/p", "my.bucket-1", "p"},
	} {
		b, p, err := ParseURL(c.in)
		if err != nil || b != c.bucket || p != c.prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v", c.in, b, p, err)
		}
	}
	for _, in := range []string{"", "mesh/x", "http://mesh/x", "s3://Mesh", "s3://ab", "s3://mesh:80/x", "s3://u@mesh/x", "s3://mesh/a//b", "s3://mesh/../x", "s3://mesh/x?y", "s3://a..b/x"} {
		if _, _, err := ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q) accepted", in)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"MESH_S3_ENDPOINT":   "https://s3.example.net",
		"MESH_S3_ACCESS_KEY": "AK",
		"MESH_S3_SECRET_KEY": "SK",
		"MESH_S3_INSECURE":   "true",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || c.Endpoint != "https://s3.example.net" || c.AccessKey != "AK" || c.SecretKey != "SK" || !c.Insecure {
		t.Fatalf("%+v, %v", c, err)
	}
	env["MESH_S3_INSECURE"] = "maybe"
	if _, err := ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Error("bad MESH_S3_INSECURE accepted")
	}
	if _, err := ConfigFromEnv(func(string) string { return "" }); err == nil {
		t.Error("missing endpoint accepted")
	}
	for _, ep := range []string{"http://", "https://h/x", "h?x"} {
		if _, err := NewClient(Config{Endpoint: ep}); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
}
