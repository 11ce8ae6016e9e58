package feeds

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/meshwork/meshwork/syncproto"
)

type edSigner struct{ key ed25519.PrivateKey }

func (s edSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

type edVerifier struct{ pub ed25519.PublicKey }

func (v edVerifier) Verify(_ syncproto.DeviceID, msg, sig []byte) error {
	if !ed25519.Verify(v.pub, msg, sig) {
		return errors.New("does not verify")
	}
	return nil
}

// TestSignatureSurvivesFeeds: a signed version written to each feed format
// (meshwork:sig, JSON _meshwork_sig) and read back still verifies.
func TestSignatureSurvivesFeeds(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	items := sampleItems(t)
	for i := range items {
		for j, c := range items[i].Sync.Conflicts {
			items[i].Sync.Conflicts[j], _ = syncproto.SignVersion(testInfo.Object, c, edSigner{key})
		}
		items[i], _ = syncproto.SignVersion(testInfo.Object, items[i], edSigner{key})
	}
	for _, fm := range formats {
		var buf bytes.Buffer
		if err := fm.write(&buf, testInfo, items, blobURL); err != nil {
			t.Fatalf("%s: %v", fm.name, err)
		}
		if !strings.Contains(buf.String(), "sig") {
			t.Fatalf("%s: no signature written", fm.name)
		}
		got, err := fm.parse(&buf)
		if err != nil {
			t.Fatalf("%s: %v", fm.name, err)
		}
		for _, it := range got {
			for _, v := range it.Versions() {
				if err := syncproto.VerifyVersion(testInfo.Object, v, "", edVerifier{pub}); err != nil {
					t.Errorf("%s: %v", fm.name, err)
				}
			}
		}
	}
	// A malformed signature is refused.
	if _, err := parseSig("!!", "x"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("parseSig: %v", err)
	}
	if _, err := parseSig(encodeBytes(make([]byte, syncproto.MaxSignatureLen+1)), "x"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("parseSig of a long signature: %v", err)
	}
}
