package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/meshwork/meshwork/blobs"
	"github.com/meshwork/meshwork/blobs/crypt"
)

// ErrNotFound is wrapped by Get when the store has no (intact) object for
// the chunk.
var ErrNotFound = errors.New("chunk not found")

// Environment variable names read by ConfigFromEnv.
const (
	EnvEndpoint  = "MESH_S3_ENDPOINT"
	EnvAccessKey = "MESH_S3_ACCESS_KEY"
	EnvSecretKey = "MESH_S3_SECRET_KEY"
	EnvInsecure  = "MESH_S3_INSECURE"
	EnvRegion    = "MESH_S3_REGION"
)

// DefaultMaxChunkSize is the default Config.MaxChunkSize: a sealed chunk of
// the largest plaintext chunk.
const DefaultMaxChunkSize = crypt.MaxSealedChunkSize

// Config says how to reach the server.
type Config struct {
	// Endpoint is https://host[:port], http://host:port or host[:port]
	// (HTTPS).
	Endpoint  string
	AccessKey string
	SecretKey string
	// Insecure skips verification of the server's TLS certificate.
	Insecure bool
	// Region defaults to us-east-1.
	Region string
	// MaxChunkSize bounds the size of a chunk Put accepts and Get reads
	// (default DefaultMaxChunkSize).
	MaxChunkSize int
	// Transport, if set, carries the requests (tests; TLS settings).
	Transport http.RoundTripper
}

// ConfigFromEnv fills a Config from the MESH_S3_* variables, read with getenv
// (os.Getenv in a main).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Endpoint:  getenv(EnvEndpoint),
		AccessKey: getenv(EnvAccessKey),
		SecretKey: getenv(EnvSecretKey),
		Region:    getenv(EnvRegion),
	}
	if v := getenv(EnvInsecure); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("s3 config: %s=%q: want true or false", EnvInsecure, v)
		}
		c.Insecure = b
	}
	if c.Endpoint == "" {
		return Config{}, fmt.Errorf("s3 config: %s is not set", EnvEndpoint)
	}
	return c, nil
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseURL splits s3://bucket/prefix into its bucket and prefix (without
// leading or trailing slashes; "" for none).
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("parse store url %q: %w", s, err)
	}
	if u.Scheme != "s3" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", "", fmt.Errorf("parse store url %q: want s3://bucket[/prefix]", s)
	}
	if !bucketRE.MatchString(u.Host) || strings.Contains(u.Host, "..") {
		return "", "", fmt.Errorf("parse store url %q: bad bucket name %q", s, u.Host)
	}
	prefix = strings.Trim(u.Path, "/")
	for _, part := range strings.Split(prefix, "/") {
		if prefix != "" && (part == "" || part == "." || part == "..") {
			return "", "", fmt.Errorf("parse store url %q: bad prefix %q", s, prefix)
		}
	}
	return u.Host, prefix, nil
}

// Store is a chunk store in one bucket under one prefix. It is safe for
// concurrent use and holds no goroutines (Close is a no-op).
type Store struct {
	cl      *minio.Client
	bucket  string
	prefix  string // "" or ends with "/"
	maxSize int
	log     *slog.Logger
}

// Open connects to the store named by storeURL (s3://bucket/prefix) and
// checks that the bucket exists.
func Open(ctx context.Context, storeURL string, cfg Config, logger *slog.Logger) (*Store, error) {
	bucket, prefix, err := ParseURL(storeURL)
	if err != nil {
		return nil, err
	}
	cl, err := NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", storeURL, err)
	}
	ok, err := cl.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open %s at %s: %w", storeURL, cfg.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("open %s at %s: bucket %q does not exist", storeURL, cfg.Endpoint, bucket)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cl: cl, bucket: bucket, maxSize: cfg.MaxChunkSize, log: logger.With("store", storeURL)}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxChunkSize
	}
	if prefix != "" {
		s.prefix = prefix + "/"
	}
	return s, nil
}

// NewClient returns a minio client for cfg (path-style bucket addressing).
// Open uses it; it is exported for tools and tests that create buckets.
func NewClient(cfg Config) (*minio.Client, error) {
	host, secure := cfg.Endpoint, true
	switch {
	case strings.HasPrefix(host, "http://"):
		host, secure = strings.TrimPrefix(host, "http://"), false
	case strings.HasPrefix(host, "https://"):
		host = strings.TrimPrefix(host, "https://")
	}
	host = strings.TrimSuffix(host, "/")
	if host == "" || strings.ContainsAny(host, "/?#@") {
		return nil, fmt.Errorf("s3 endpoint %q: want [http[s]://]host[:port]", cfg.Endpoint)
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	tr := cfg.Transport
	if tr == nil {
		t, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("s3 endpoint %q: %w", cfg.Endpoint, err)
		}
		if cfg.Insecure && t.TLSClientConfig != nil {
			t.TLSClientConfig.InsecureSkipVerify = true
		}
		tr = t
	}
	cl, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       secure,
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    tr,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %w", cfg.Endpoint, err)
	}
	return cl, nil
}

// Close releases nothing; it exists so Store fits io.Closer users.
func (s *Store) Close() error { return nil }

// Key returns the object key of chunk id (see the package doc).
func (s *Store) Key(id blobs.ChunkID) string {
	t := id.String()
	return s.prefix + t[5:7] + "/" + t[7:9] + "/" + t
}

// parseKey is the inverse of Key; ok is false for keys outside the layout.
func (s *Store) parseKey(key string) (blobs.ChunkID, bool) {
	rest, ok := strings.CutPrefix(key, s.prefix)
	if !ok || len(rest) != 6+5+52 {
		return blobs.ChunkID{}, false
	}
	id, err := blobs.ParseChunkID(rest[6:])
	if err != nil || s.Key(id) != key {
		return blobs.ChunkID{}, false
	}
	return id, true
}

func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey"
}

// Has reports whether the store has an object for id. It does not read or
// verify the object.
func (s *Store) Has(ctx context.Context, id blobs.ChunkID) (bool, error) {
	_, err := s.cl.StatObject(ctx, s.bucket, s.Key(id), minio.StatObjectOptions{})
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("has chunk %v: %w", id, err)
	}
}

// Get reads chunk id into buf (grown if too small), verifies its hash and
// returns the chunk bytes. A missing object is an error wrapping
// ErrNotFound; an object whose bytes do not hash to id is deleted and
// reported as an error wrapping both ErrNotFound and blobs.ErrMismatch.
func (s *Store) Get(ctx context.Context, id blobs.ChunkID, buf []byte) ([]byte, error) {
	key := s.Key(id)
	obj, err := s.cl.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.getErr(id, err)
	}
	defer obj.Close()
	w := bytes.NewBuffer(buf[:0])
	n, err := w.ReadFrom(io.LimitReader(obj, int64(s.maxSize)+1))
	if err != nil {
		return nil, s.getErr(id, err)
	}
	if n > int64(s.maxSize) || n == 0 {
		return nil, fmt.Errorf("get chunk %v: object %s is %s bytes (limit %d): %w", id, key, sizeStr(n, s.maxSize), s.maxSize, blobs.ErrMalformed)
	}
	data := w.Bytes()
	if got := blobs.SumChunk(data); got != id {
		s.log.Warn("deleting corrupt chunk object", "chunk", id, "key", key, "hash", got)
		derr := s.cl.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
		if derr != nil {
			s.log.Warn("delete corrupt chunk object", "chunk", id, "key", key, "err", derr)
		}
		return nil, fmt.Errorf("get chunk %v: object %s hashes to %v: %w (%w)", id, key, got, ErrNotFound, blobs.ErrMismatch)
	}
	return data, nil
}

func sizeStr(n int64, max int) string {
	if n > int64(max) {
		return "over " + strconv.Itoa(max)
	}
	return strconv.FormatInt(n, 10)
}

func (s *Store) getErr(id blobs.ChunkID, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("get chunk %v: %w", id, ErrNotFound)
	}
	return fmt.Errorf("get chunk %v: %w", id, err)
}

// Put verifies that data hashes to id and uploads it unless an object for id
// already exists. The upload carries a Content-MD5 the server checks.
func (s *Store) Put(ctx context.Context, id blobs.ChunkID, data []byte) error {
	if len(data) == 0 || len(data) > s.maxSize {
		return fmt.Errorf("put chunk %v: size %d (limit %d): %w", id, len(data), s.maxSize, blobs.ErrMalformed)
	}
	if got := blobs.SumChunk(data); got != id {
		return fmt.Errorf("put chunk %v: data hashes to %v: %w", id, got, blobs.ErrMismatch)
	}
	have, err := s.Has(ctx, id)
	if err != nil {
		return fmt.Errorf("put chunk %v: %w", id, err)
	}
	if have {
		return nil
	}
	_, err = s.cl.PutObject(ctx, s.bucket, s.Key(id), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:      "application/octet-stream",
		SendContentMd5:   true,
		DisableMultipart: true,
	})
	if err != nil {
		return fmt.Errorf("put chunk %v: %w", id, err)
	}
	return nil
}

// Delete removes the object for id; deleting a missing chunk is not an error.
func (s *Store) Delete(ctx context.Context, id blobs.ChunkID) error {
	err := s.cl.RemoveObject(ctx, s.bucket, s.Key(id), minio.RemoveObjectOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete chunk %v: %w", id, err)
	}
	return nil
}

// Enumerate calls fn for every chunk object under the prefix, each once, in
// the server's listing order (by key, which is not ChunkID order), with the
// object's size, until fn returns an error or the listing ends. Sizes are
// as stored, not verified.
func (s *Store) Enumerate(ctx context.Context, fn func(id blobs.ChunkID, size uint32) error) error {
	ctx, cancel := context.WithCancel(ctx)
	objs := s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true})
	defer func() {
		// Stop minio's lister goroutine and wait until it has exited.
		cancel()
		for range objs {
		}
	}()
	for obj := range objs {
		if obj.Err != nil {
			return fmt.Errorf("enumerate s3://%s/%s: %w", s.bucket, s.prefix, obj.Err)
		}
		id, ok := s.parseKey(obj.Key)
		if !ok || obj.Size <= 0 || obj.Size > int64(s.maxSize) {
			continue
		}
		if err := fn(id, uint32(obj.Size)); err != nil {
			return err
		}
	}
	return ctx.Err()
}
