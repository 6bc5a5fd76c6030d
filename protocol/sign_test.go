package protocol_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
)

var testNow = time.Date(2026, 11, 23, 10, 40, 5, 0, time.UTC)

const (
	testAK     = "LTAI5tTestAccessKey"
	testSecret = "s3cr3t/With+Symbols="
)

func secrets(m map[string]string) protocol.SecretFunc {
	return func(_ context.Context, ak string) (string, error) {
		s, ok := m[ak]
		if !ok {
			return "", protocol.ErrUnknownAccessKey
		}
		return s, nil
	}
}

// randomRequest returns a request description as the SDK signer takes it.
//
// Header values are padded only when pad is set: v1 trims values, while v4
// (SDK and ours) signs them as given — and HTTP servers receive them trimmed,
// so a padded v4 value can never verify anywhere.
func randomRequest(r *rand.Rand, pad bool) (method, uri string, headers map[string]string, body []byte) {
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	method = methods[r.IntN(len(methods))]
	paths := []string{"/", "/logstores/access-log", "/logstores/ls_1/shards/lb", "/logstores/a%20b/index",
		"/machinegroups/g-1/configs/c.1"}
	uri = paths[r.IntN(len(paths))]
	queries := []string{"", "?key=abc&seqid=7", "?type=log&from=1&to=2&query=status%3A200%20and%20x&line=100",
		"?offset=0&size=500", "?b=2&a=1&a=3", "?empty=&z=%E4%B8%AD&tilde=a~b"}
	uri += queries[r.IntN(len(queries))]
	headers = map[string]string{
		"x-log-apiversion":  protocol.APIVersion,
		"x-log-bodyrawsize": fmt.Sprint(r.IntN(1 << 20)),
		"User-Agent":        "sdk-test",
	}
	if r.IntN(2) == 0 {
		headers["x-log-compresstype"] = []string{"lz4", "zstd", "deflate"}[r.IntN(3)]
	}
	if r.IntN(3) == 0 {
		headers["x-acs-security-token"] = "sts-token-" + fmt.Sprint(r.Int())
	}
	if r.IntN(3) == 0 {
		headers["X-Log-Custom"] = "custom value"
		if pad {
			headers["X-Log-Custom"] = "  padded value  "
		}
	}
	if method != "GET" && method != "DELETE" {
		body = make([]byte, r.IntN(300))
		for i := range body {
			body[i] = byte(r.IntN(256))
		}
		headers["Content-Type"] = protocol.ContentTypeProtobuf
	}
	return method, uri, headers, body
}

func toHTTPHeader(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// TestSignV1MatchesSDK signs the same random requests with the SDK's
// SignerV1 and ours: the Authorization values must be identical.
func TestSignV1MatchesSDK(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 23, 10, 40, 5, 0, time.UTC)
	for i := range 300 {
		method, uri, headers, body := randomRequest(r, true)
		h := toHTTPHeader(headers)

		headers["Date"] = now.Format(http.TimeFormat)
		require.NoError(t, sls.NewSignerV1(testAK, testSecret).Sign(method, uri, headers, body))

		path, query, _ := strings.Cut(uri, "?")
		s := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: testAK, AccessKeySecret: testSecret}}
		require.NoError(t, s.Sign(method, path, query, "", h, body, now))
		require.Equal(t, headers["Authorization"], h.Get("Authorization"), "request %d: %s %s", i, method, uri)
		if body != nil {
			require.Equal(t, headers["Content-MD5"], h.Get("Content-MD5"))
		}
	}
}

func TestSignV4MatchesSDK(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	now := time.Date(2026, 11, 23, 23, 59, 59, 0, time.UTC)
	for i := range 300 {
		method, uri, headers, body := randomRequest(r, false)
		h := toHTTPHeader(headers)
		host := "proj.sluice.localhost:8080"

		headers["x-log-date"] = now.Format(protocol.V4DateFormat)
		headers["Host"] = "http://" + host
		require.NoError(t, sls.NewSignerV4(testAK, testSecret, "cn-hangzhou").Sign(method, uri, headers, body))

		u, _, _ := strings.Cut(uri, "?")
		_, query, _ := strings.Cut(uri, "?")
		s := protocol.Signer{Version: protocol.SignatureV4, Region: "cn-hangzhou",
			Credentials: protocol.Credentials{AccessKeyID: testAK, AccessKeySecret: testSecret}}
		require.NoError(t, s.Sign(method, u, query, host, h, body, now))
		require.Equal(t, headers["Authorization"], h.Get("Authorization"), "request %d: %s %s", i, method, uri)
		require.Equal(t, headers["x-log-content-sha256"], h.Get("x-log-content-sha256"))
	}
}

// TestVerifyRoundTrip signs random requests with our signer, sends them
// over real HTTP and verifies on the server side; then tampers with each
// signed part and expects SignatureNotMatch.
func TestVerifyRoundTrip(t *testing.T) {
	type seen struct {
		id  protocol.Identity
		err error
	}
	results := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, err := protocol.VerifyRequest(r.Context(), r, body, secrets(map[string]string{testAK: testSecret}))
		results <- seen{id, err}
	}))
	defer srv.Close()

	rnd := rand.New(rand.NewPCG(5, 6))
	for _, v := range []protocol.SignatureVersion{protocol.SignatureV1, protocol.SignatureV4} {
		s := protocol.Signer{Version: v, Region: "cn-shanghai",
			Credentials: protocol.Credentials{AccessKeyID: testAK, AccessKeySecret: testSecret, SecurityToken: "tok"}}
		for i := range 20 {
			method, uri, headers, body := randomRequest(rnd, v == protocol.SignatureV1)
			send := func(mutate func(*http.Request, *[]byte)) seen {
				req, err := http.NewRequest(method, srv.URL+uri, nil)
				require.NoError(t, err)
				for k, v := range headers {
					req.Header.Set(k, v)
				}
				b := body
				require.NoError(t, s.SignRequest(req, b, time.Now()))
				if mutate != nil {
					mutate(req, &b)
				}
				req.Body = io.NopCloser(bytes.NewReader(b))
				req.ContentLength = int64(len(b))
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				return <-results
			}
			got := send(nil)
			require.NoError(t, got.err, "%v request %d %s %s", v, i, method, uri)
			require.Equal(t, testAK, got.id.AccessKeyID)
			require.Equal(t, v, got.id.Version)
			require.Equal(t, "tok", got.id.SecurityToken)

			tampers := map[string]func(*http.Request, *[]byte){
				"header": func(r *http.Request, _ *[]byte) { r.Header.Set("x-log-bodyrawsize", "12345678") },
				"query":  func(r *http.Request, _ *[]byte) { r.URL.RawQuery += "&extra=1" },
				"path":   func(r *http.Request, _ *[]byte) { r.URL.Path += "x" },
			}
			if len(body) > 0 {
				tampers["body"] = func(_ *http.Request, b *[]byte) {
					c := bytes.Clone(*b)
					c[0] ^= 1
					*b = c
				}
			}
			for name, m := range tampers {
				got := send(m)
				require.Error(t, got.err, "%v tamper %s", v, name)
				require.Equal(t, protocol.CodeSignatureNotMatch, protocol.CodeOf(got.err), "%v tamper %s: %v", v, name, got.err)
			}
		}
	}
}

// sdkClient returns a Go SDK client whose connections all go to srv,
// whatever host name the SDK puts the project into.
func sdkClient(srv *httptest.Server, ak, secret string, v4 bool) *sls.Client {
	c := sls.CreateNormalInterface(fmt.Sprintf("sluice.localhost:%d", srv.Listener.Addr().(*net.TCPAddr).Port), ak, secret, "").(*sls.Client)
	addr := srv.Listener.Addr().String()
	c.SetHTTPClient(&http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}})
	c.SetRetryTimeout(time.Second)
	if v4 {
		c.SetAuthVersion(sls.AuthV4)
		c.SetRegion("cn-beijing")
	}
	return c
}

// TestVerifySDKRequests verifies what the real SDK sends over the wire,
// v1 and v4, for PutLogs (every compression) and a GET with a query.
func TestVerifySDKRequests(t *testing.T) {
	g := protocoltest.ToSDK(protocoltest.NginxLogGroup(4 << 10))
	nginxRows := len(g.Logs)
	var mu sync.Mutex
	var errs []error
	var ids []protocol.Identity
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, err := protocol.VerifyRequest(r.Context(), r, body, secrets(map[string]string{testAK: testSecret}))
		if err == nil {
			err = protocol.CheckClockSkew(r.Header, time.Now(), 0)
		}
		if err == nil && r.Method == http.MethodPost {
			// The SDK's compressed bodies decode to the group it sent.
			err = decodeSDKBody(r, body, nginxRows)
		}
		mu.Lock()
		errs, ids = append(errs, err), append(ids, id)
		mu.Unlock()
		if err != nil {
			protocol.WriteError(w, "req-1", err)
			return
		}
		w.Header().Set(protocol.HeaderRequestID, "req-1")
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"logstoreName":"ls","ttl":1,"shardCount":1}`))
		}
	}))
	defer srv.Close()

	for _, v4 := range []bool{false, true} {
		c := sdkClient(srv, testAK, testSecret, v4)
		for _, ct := range []int{sls.Compress_LZ4, sls.Compress_ZSTD, sls.Compress_None} {
			require.NoError(t, c.PutLogsWithCompressType("proj", "ls", g, ct), "v4=%v compress %d", v4, ct)
		}
		_, _ = c.GetLogStore("proj", "my-store")
		bad := sdkClient(srv, testAK, "wrong-secret", v4)
		err := bad.PutLogs("proj", "ls", g)
		require.Error(t, err)
		var se *sls.Error
		require.True(t, errors.As(err, &se), "%T %v", err, err)
		require.Equal(t, "SignatureNotMatch", se.Code)
		// An unknown key id is answered as a wrong secret: ids cannot be
		// enumerated.
		wrongMsg := se.Message
		unknown := sdkClient(srv, "nobody", "wrong-secret", v4)
		err = unknown.PutLogs("proj", "ls", g)
		require.True(t, errors.As(err, &se), "%T %v", err, err)
		require.Equal(t, "SignatureNotMatch", se.Code)
		require.Equal(t, stripSigned(wrongMsg), stripSigned(se.Message))
	}
	mu.Lock()
	defer mu.Unlock()
	// 4 good requests per version, then the two bad ones.
	require.Len(t, errs, 12)
	for i, err := range errs {
		if i%6 < 4 {
			require.NoError(t, err, "request %d", i)
			require.Equal(t, testAK, ids[i].AccessKeyID)
		}
	}
	require.Equal(t, protocol.SignatureV4, ids[6].Version)
	require.Equal(t, "cn-beijing", ids[6].Region)
}

func TestVerifyMalformed(t *testing.T) {
	lookup := secrets(map[string]string{testAK: testSecret})
	storeDown := errors.New("meta store down")
	cases := []struct {
		auth string
		code protocol.ErrorCode
	}{
		{"", protocol.CodeUnauthorized},
		{"Basic abc", protocol.CodeUnauthorized},
		{"LOG nocolon", protocol.CodeUnauthorized},
		{"LOG " + testAK + ":not-base64!", protocol.CodeSignatureNotMatch},
		{"LOG " + testAK + ":AAAA", protocol.CodeSignatureNotMatch},
		{"LOG ghost:AAAAAAAAAAAAAAAAAAAAAAAAAAA=", protocol.CodeSignatureNotMatch},
		{"SLS4-HMAC-SHA256 Credential=ak/20260101/r/sls,Signature=00", protocol.CodeUnauthorized},
		{"SLS4-HMAC-SHA256 Credential=" + testAK + "/20260101/r/sls/aliyun_v4_request,Signature=zz", protocol.CodeSignatureNotMatch},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", "/logstores", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		_, err := protocol.VerifyRequest(context.Background(), req, nil, lookup)
		require.Error(t, err, c.auth)
		require.Equal(t, c.code, protocol.CodeOf(err), "%q: %v", c.auth, err)
	}

	// A lookup failure that is not "unknown key" passes through (a 500, not a 401).
	req := httptest.NewRequest("GET", "/logstores", nil)
	s := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: testAK, AccessKeySecret: testSecret}}
	require.NoError(t, s.SignRequest(req, nil, time.Now()))
	_, err := protocol.VerifyRequest(context.Background(), req, nil, func(context.Context, string) (string, error) { return "", storeDown })
	require.ErrorIs(t, err, storeDown)
	require.Equal(t, 500, protocol.AsError(err).HTTPStatus)
}

// stripSigned drops the string the server signed from a SignatureNotMatch
// message (it quotes the request, which differs in its date).
func stripSigned(msg string) string {
	before, _, _ := strings.Cut(msg, "the server signed")
	return before
}

// TestVerifyHeadersFirst: the signature is checked from the headers
// alone (the body is read only for a signed request) and the body then
// against the signed digest; unknown ids and wrong secrets get one answer.
func TestVerifyHeadersFirst(t *testing.T) {
	lookup := secrets(map[string]string{testAK: testSecret})
	body := []byte("the body as sent")
	for _, v := range []protocol.SignatureVersion{protocol.SignatureV1, protocol.SignatureV4} {
		sign := func(ak, secret string, b []byte) *http.Request {
			req := httptest.NewRequest("POST", "/logstores/ls/shards/lb", bytes.NewReader(b))
			req.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
			s := protocol.Signer{Version: v, Region: "r", Credentials: protocol.Credentials{AccessKeyID: ak, AccessKeySecret: secret}}
			require.NoError(t, s.SignRequest(req, b, time.Now()))
			return req
		}
		req := sign(testAK, testSecret, body)
		id, err := protocol.VerifyHeaders(context.Background(), req, lookup)
		require.NoError(t, err)
		require.NoError(t, protocol.CheckBody(req.Header, id.Version, body))
		require.Equal(t, protocol.CodeSignatureNotMatch, protocol.CodeOf(protocol.CheckBody(req.Header, id.Version, []byte("altered"))))

		_, wrong := protocol.VerifyHeaders(context.Background(), sign(testAK, "wrong", body), lookup)
		_, unknown := protocol.VerifyHeaders(context.Background(), sign("nobody", "wrong", body), lookup)
		require.Equal(t, protocol.CodeSignatureNotMatch, protocol.CodeOf(wrong))
		require.Equal(t, protocol.CodeOf(wrong), protocol.CodeOf(unknown))
		require.Equal(t, protocol.AsError(wrong).HTTPStatus, protocol.AsError(unknown).HTTPStatus)
		require.Equal(t, stripSigned(protocol.AsError(wrong).Message), stripSigned(protocol.AsError(unknown).Message))
	}
	// v1: a body announced without Content-MD5 is refused before it is read.
	req := httptest.NewRequest("POST", "/logstores/ls/shards/lb", bytes.NewReader(body))
	s := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: testAK, AccessKeySecret: testSecret}}
	require.NoError(t, s.SignRequest(req, nil, time.Now()))
	req.ContentLength = int64(len(body))
	_, err := protocol.VerifyHeaders(context.Background(), req, lookup)
	require.ErrorContains(t, err, "missing Content-MD5")
}

// TestVerifyV1Quirks: headers the Python SDK adds after signing (x-log-date)
// and x-log-meta-* are not part of the verifier's canonical headers, and a
// Content-MD5 in lowercase hex is accepted.
func TestVerifyV1Quirks(t *testing.T) {
	lookup := secrets(map[string]string{testAK: testSecret})
	body := []byte("hello body")
	req := httptest.NewRequest("POST", "/logstores/ls/shards/lb", bytes.NewReader(body))
	req.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
	req.Header.Set("x-log-bodyrawsize", "10")
	s := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: testAK, AccessKeySecret: testSecret}}
	require.NoError(t, s.SignRequest(req, body, time.Now()))
	req.Header.Set("x-log-date", "20260101T000000Z")
	req.Header.Set("x-log-meta-app", "added later")
	req.Header.Set("Content-MD5", strings.ToLower(req.Header.Get("Content-MD5")))
	_, err := protocol.VerifyRequest(context.Background(), req, body, lookup)
	// Lowercasing the MD5 changes the signed string, so this must fail...
	require.Equal(t, protocol.CodeSignatureNotMatch, protocol.CodeOf(err))
	// ...while the same request with the original MD5 passes despite the
	// extra headers.
	req.Header.Set("Content-MD5", strings.ToUpper(req.Header.Get("Content-MD5")))
	id, err := protocol.VerifyRequest(context.Background(), req, body, lookup)
	require.NoError(t, err)
	require.Equal(t, testAK, id.AccessKeyID)

	// A body without Content-MD5 is not covered by the signature.
	req.Header.Del("Content-MD5")
	_, err = protocol.VerifyRequest(context.Background(), req, body, lookup)
	require.Equal(t, protocol.CodeSignatureNotMatch, protocol.CodeOf(err))
}

func TestCheckClockSkew(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	h := http.Header{}
	err := protocol.CheckClockSkew(h, now, 0)
	require.Equal(t, protocol.CodeMissingDate, protocol.CodeOf(err))

	h.Set("Date", "yesterday")
	require.Equal(t, protocol.CodeInvalidDateFormat, protocol.CodeOf(protocol.CheckClockSkew(h, now, 0)))

	h.Set("Date", now.Add(14*time.Minute).Format(http.TimeFormat))
	require.NoError(t, protocol.CheckClockSkew(h, now, 0))

	h.Set("Date", now.Add(-16*time.Minute).Format(http.TimeFormat))
	err = protocol.CheckClockSkew(h, now, 0)
	var skew *protocol.ClockSkewError
	require.ErrorAs(t, err, &skew)
	require.Equal(t, -16*time.Minute, skew.Skew())
	require.Equal(t, protocol.CodeRequestTimeExpired, protocol.CodeOf(err))
	require.Equal(t, 400, protocol.AsError(err).HTTPStatus)

	// v4 requests are dated by x-log-date.
	h.Set("Authorization", "SLS4-HMAC-SHA256 Credential=a/20261123/r/sls/aliyun_v4_request,Signature=00")
	require.Equal(t, protocol.CodeMissingDate, protocol.CodeOf(protocol.CheckClockSkew(h, now, 0)))
	h.Set("x-log-date", now.Add(20*time.Minute).Format(protocol.V4DateFormat))
	require.ErrorAs(t, protocol.CheckClockSkew(h, now, 0), &skew)
	require.NoError(t, protocol.CheckClockSkew(h, now, time.Hour))
}

func decodeSDKBody(r *http.Request, body []byte, wantLogs int) error {
	ct, err := protocol.ParseCompressType(r.Header.Get(protocol.HeaderCompressType))
	if err != nil {
		return err
	}
	size := -1
	if ct != protocol.CompressNone {
		if size, err = strconv.Atoi(r.Header.Get(protocol.HeaderBodyRawSize)); err != nil {
			return err
		}
	}
	raw, err := protocol.Decompress(nil, body, ct, size, 0)
	if err != nil {
		return err
	}
	var lg protocol.LogGroup
	if err := lg.Unmarshal(raw); err != nil {
		return err
	}
	if len(lg.Logs) != wantLogs {
		return fmt.Errorf("decoded %d logs, want %d", len(lg.Logs), wantLogs)
	}
	return nil
}

// v1 signed with HMAC-SHA256, as the sls20201230 SDKs sign by default:
// x-log-signaturemethod: hmac-sha256 (itself signed), the same string to
// sign, a 32-byte MAC. A SHA-1 MAC under that header, or an unknown
// method, is refused.
func TestVerifyV1HMACSHA256(t *testing.T) {
	lookup := secrets(map[string]string{testAK: testSecret})
	body := []byte(`{"from":1,"to":2}`)
	req := httptest.NewRequest("POST", "/logstores/ls/logs?type=x&empty=", bytes.NewReader(body))
	req.Header.Set("Content-Type", protocol.ContentTypeJSON)
	req.Header.Set("x-log-bodyrawsize", fmt.Sprint(len(body)))
	req.Header.Set("x-log-apiversion", protocol.APIVersion)
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("Content-MD5", strings.ToUpper(fmt.Sprintf("%x", md5.Sum(body))))
	req.Header.Set(protocol.HeaderSignatureMethod, protocol.SignatureMethodHMACSHA256)
	view := protocol.RequestView{Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery, Header: req.Header}
	sts := protocol.StringToSignV1(&view, true)
	require.Contains(t, sts, "x-log-signaturemethod:hmac-sha256\n")
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(sts))
	req.Header.Set("Authorization", "LOG "+testAK+":"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	id, err := protocol.VerifyRequest(context.Background(), req, body, lookup)
	require.NoError(t, err)
	require.Equal(t, testAK, id.AccessKeyID)

	wrong := hmac.New(sha256.New, []byte("other secret"))
	wrong.Write([]byte(sts))
	req.Header.Set("Authorization", "LOG "+testAK+":"+base64.StdEncoding.EncodeToString(wrong.Sum(nil)))
	_, err = protocol.VerifyRequest(context.Background(), req, body, lookup)
	require.Equal(t, protocol.CodeSignatureNotMatch, protocol.CodeOf(err))

	sha1MAC := hmac.New(sha1.New, []byte(testSecret))
	sha1MAC.Write([]byte(sts))
	req.Header.Set("Authorization", "LOG "+testAK+":"+base64.StdEncoding.EncodeToString(sha1MAC.Sum(nil)))
	_, err = protocol.VerifyRequest(context.Background(), req, body, lookup)
	require.ErrorContains(t, err, "32-byte HMAC-SHA256")

	req.Header.Set(protocol.HeaderSignatureMethod, "hmac-md5")
	_, err = protocol.VerifyRequest(context.Background(), req, body, lookup)
	require.ErrorContains(t, err, "hmac-sha256")
}
