package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicelog/sluice/server/meta"
)

// KeyStore is what key management needs of the metadata store.
type KeyStore interface {
	Keys
	PutAccessKey(ctx context.Context, k meta.AccessKey) error
	ListAccessKeys(ctx context.Context) ([]meta.AccessKey, error)
}

// MinSecretLength is the shortest access key secret the server accepts
// from an operator or a client (generated secrets are 32 characters): a
// secret signs every request with HMAC, and a short one falls to an
// offline guess from one captured request.
const MinSecretLength = 16

// NewKey returns a fresh random access key pair: a 24-character id starting
// "SLK" and a 32-character secret, both from crypto/rand.
func NewKey() (id, secret string, err error) {
	b := make([]byte, 13+24)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generate access key: %w", err)
	}
	id = "SLK" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:13])[:21]
	secret = base64.RawURLEncoding.EncodeToString(b[13:])
	return id, secret, nil
}

// KeyFile is the JSON form of a key pair on disk (--admin-key-file and the
// file a generated admin key is written to).
type KeyFile struct {
	AccessKeyID     string `json:"accessKeyId"`
	AccessKeySecret string `json:"accessKeySecret"`
}

// ReadKeyFile reads a KeyFile.
func ReadKeyFile(path string) (KeyFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return KeyFile{}, fmt.Errorf("read key file: %w", err)
	}
	var kf KeyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return KeyFile{}, fmt.Errorf("key file %s: %w (want {\"accessKeyId\": \"...\", \"accessKeySecret\": \"...\"})", path, err)
	}
	if kf.AccessKeyID == "" || kf.AccessKeySecret == "" {
		return KeyFile{}, fmt.Errorf("key file %s: accessKeyId and accessKeySecret are both required", path)
	}
	return kf, nil
}

// WriteKeyFile writes kf to path with mode 0600, refusing to overwrite.
func WriteKeyFile(path string, kf KeyFile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync key file %s: %w", path, err)
	}
	return f.Close()
}

// BootstrapConfig says where the admin key comes from, in order: ID and
// Secret (flags or environment), else File (an existing KeyFile), else an
// admin key already in the store, else a generated key written to
// GeneratedFile.
type BootstrapConfig struct {
	ID, Secret    string
	File          string
	GeneratedFile string
	Now           func() time.Time
	Logger        *slog.Logger
}

// Bootstrap makes sure an admin key exists, as BootstrapConfig describes,
// and returns it. A given ID/Secret (or File) replaces the secret of an
// existing key with that id: the operator's configuration wins.
func Bootstrap(ctx context.Context, keys KeyStore, cfg BootstrapConfig) (meta.AccessKey, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	id, secret := strings.TrimSpace(cfg.ID), strings.TrimSpace(cfg.Secret)
	if (id == "") != (secret == "") {
		return meta.AccessKey{}, errors.New("admin key: give both the access key id and the secret, or neither")
	}
	if id == "" && cfg.File != "" {
		kf, err := ReadKeyFile(cfg.File)
		if err != nil {
			return meta.AccessKey{}, fmt.Errorf("admin key: %w", err)
		}
		id, secret = kf.AccessKeyID, kf.AccessKeySecret
	}
	if id != "" && len(secret) < MinSecretLength {
		return meta.AccessKey{}, fmt.Errorf("admin key: the secret of %q is %d characters; at least %d are required (e.g. `openssl rand -base64 24`)", id, len(secret), MinSecretLength)
	}
	if id != "" {
		k, err := keys.GetAccessKey(ctx, id)
		switch {
		case err == nil && k.Admin && k.Secret == secret:
			return k, nil
		case err == nil && !k.Admin:
			return meta.AccessKey{}, fmt.Errorf("admin key: access key %q exists and is not an admin key; choose another id", id)
		case err != nil && !errors.Is(err, meta.ErrNotFound):
			return meta.AccessKey{}, fmt.Errorf("admin key: %w", err)
		}
		k = meta.AccessKey{ID: id, Secret: secret, Admin: true, Description: "admin (configured)", CreateTime: now().UTC()}
		if err := keys.PutAccessKey(ctx, k); err != nil {
			return meta.AccessKey{}, fmt.Errorf("admin key: store: %w", err)
		}
		logger.Info("admin access key configured", "accessKeyId", id)
		return k, nil
	}

	all, err := keys.ListAccessKeys(ctx)
	if err != nil {
		return meta.AccessKey{}, fmt.Errorf("admin key: %w", err)
	}
	for _, k := range all {
		if k.Admin {
			return k, nil
		}
	}
	if cfg.GeneratedFile == "" {
		return meta.AccessKey{}, errors.New("admin key: none configured and no file to write a generated one to")
	}
	if kf, err := ReadKeyFile(cfg.GeneratedFile); err == nil {
		// A key generated earlier whose metadata was since reset: keep the
		// credentials the operator already has.
		return Bootstrap(ctx, keys, BootstrapConfig{ID: kf.AccessKeyID, Secret: kf.AccessKeySecret, Now: cfg.Now, Logger: cfg.Logger})
	}
	id, secret, err = NewKey()
	if err != nil {
		return meta.AccessKey{}, err
	}
	// Write the file first: a key stored but never shown would lock the
	// operator out.
	if err := WriteKeyFile(cfg.GeneratedFile, KeyFile{AccessKeyID: id, AccessKeySecret: secret}); err != nil {
		return meta.AccessKey{}, fmt.Errorf("admin key: %w (remove a stale file or pass --admin-key-id/--admin-key-secret)", err)
	}
	k := meta.AccessKey{ID: id, Secret: secret, Admin: true, Description: "admin (generated)", CreateTime: now().UTC()}
	if err := keys.PutAccessKey(ctx, k); err != nil {
		return meta.AccessKey{}, fmt.Errorf("admin key: store: %w", err)
	}
	logger.Warn("generated an admin access key; its secret is in the key file (mode 0600)",
		"accessKeyId", id, "file", cfg.GeneratedFile)
	return k, nil
}
