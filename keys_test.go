package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/token"
)

// keyEnv returns JWT_PRIVATE_KEY and JWT_PUBLIC_KEY for a new key of alg.
func keyEnv(t *testing.T, alg string) (priv, pub string) {
	t.Helper()
	k, err := token.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := token.EncodePrivateKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := token.EncodePublicKeyPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(privPEM), base64.StdEncoding.EncodeToString(pubPEM)
}

func jwksKids(t *testing.T, s *testServer) map[string]string {
	t.Helper()
	resp, body := get(t, s.base+"/.well-known/jwks.json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS status %d", resp.StatusCode)
	}
	var set struct{ Keys []struct{ Kid, Alg string } }
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	kids := map[string]string{}
	for _, k := range set.Keys {
		kids[k.Kid] = k.Alg
	}
	return kids
}

// TestEachAlgorithm runs sign-in, me and refresh with each key type.
func TestEachAlgorithm(t *testing.T) {
	for _, alg := range []string{token.RS256, token.ES256, token.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			priv, pub := keyEnv(t, alg)
			s := startServer(t, serverOptions{env: map[string]string{"JWT_ALGORITHM": alg, "JWT_PRIVATE_KEY": priv, "JWT_PUBLIC_KEY": pub}})
			c, p := s.signedIn("alg@example.com")
			if h := gqltest.JWTPart(t, p.AccessToken, 0); h["alg"] != alg {
				t.Fatalf("header alg = %v", h["alg"])
			}
			gqltest.ExpectOK(t, c.Do(gqltest.MeQuery, nil))
			c.MustRefresh()
			gqltest.ExpectOK(t, c.Do(gqltest.MeQuery, nil))
			if kids := jwksKids(t, s); len(kids) != 1 {
				t.Fatalf("JWKS = %v", kids)
			}
		})
	}
}

// TestKeyRotation signs in with one key, restarts with a new key and the
// old public key in JWT_PREVIOUS_PUBLIC_KEYS: the old tokens keep working
// (access and refresh) and the JWKS publishes both keys. The old key is
// even of another type, as when moving from ES256 to RS256.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldPriv, oldPub := keyEnv(t, token.ES256)
	s1 := startServer(t, serverOptions{env: map[string]string{
		"DATA_DIR": dir, "JWT_ALGORITHM": token.ES256, "JWT_PRIVATE_KEY": oldPriv, "JWT_PUBLIC_KEY": oldPub,
	}})
	c, p := s1.signedIn("rotate-keys@example.com")
	refreshTok := c.Cookie("refresh_token")
	oldKid := gqltest.JWTPart(t, p.AccessToken, 0)["kid"].(string)
	if err := s1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Step 2 of the rotation: the new pair signs; the old key is kept as a
	// previous *private* key (so the refresh tokens MAC'd under it stay
	// valid); step 1's key, the new public one, is still listed too.
	s2 := startServer(t, serverOptions{env: map[string]string{
		"DATA_DIR": dir, "JWT_PREVIOUS_PRIVATE_KEYS": oldPriv, "JWT_PREVIOUS_PUBLIC_KEYS": testKeys.pub,
	}})
	kids := jwksKids(t, s2)
	if kids[oldKid] != token.ES256 || kids[testKeyID(t)] != token.RS256 || len(kids) != 2 {
		t.Fatalf("JWKS = %v, want the new RS256 key and the old ES256 one", kids)
	}
	// The old access token still works.
	gqltest.ExpectOK(t, s2.client().Bearer(p.AccessToken).Do(gqltest.MeQuery, nil))
	// So does the old refresh token; what it returns is signed with the new key.
	c2 := s2.client()
	c2.SetCookie("refresh_token", refreshTok)
	p2 := c2.MustRefresh()
	if kid := gqltest.JWTPart(t, p2.AccessToken, 0)["kid"]; kid != testKeyID(t) {
		t.Fatalf("new token kid %v, want the new key's", kid)
	}

	// Without the previous key, the old token is refused.
	s3 := startServer(t, serverOptions{env: map[string]string{"DATA_DIR": t.TempDir()}})
	gqltest.ExpectCode(t, s3.client().Bearer(p.AccessToken).Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
}

// testKeyID returns the kid of the shared test key (testKeys), which the
// servers of these tests sign with unless told otherwise.
func testKeyID(t *testing.T) string {
	t.Helper()
	pemBytes, err := base64.StdEncoding.DecodeString(testKeys.pub)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := token.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := token.Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}
