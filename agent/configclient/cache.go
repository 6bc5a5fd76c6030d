package configclient

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/sluicelog/sluice/internal/fsutil"
)

// cacheFile is what user_config_file_path holds: the agent's instance id
// (stable across restarts, so ListMachines shows one machine, not one per
// restart) and the last configs received, so a restart while the server is
// down keeps collecting.
type cacheFile struct {
	InstanceID string         `json:"instanceId"`
	SavedAt    time.Time      `json:"savedAt"`
	Configs    []cachedConfig `json:"configs"`
}

type cachedConfig struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	// Detail is the config body as the server sent it.
	Detail string `json:"detail"`
}

func loadCache(path string) (*cacheFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &cacheFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config cache %s: %w", path, err)
	}
	var c cacheFile
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, &damagedError{path: path, err: err}
	}
	return &c, nil
}

// damagedError is a cache file that is not what saveCache writes. The cache
// only saves a round trip to the server, so it is set aside, not fatal.
type damagedError struct {
	path string
	err  error
}

func (e *damagedError) Error() string {
	return fmt.Sprintf("config cache %s is damaged (%v): it is set aside as %s.damaged; the configs are fetched again from the server", e.path, e.err, e.path)
}

func saveCache(path string, c *cacheFile) error {
	sort.Slice(c.Configs, func(i, j int) bool { return c.Configs[i].Name < c.Configs[j].Name })
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("write config cache: %w", err)
	}
	if err := fsutil.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write config cache: %w", err)
	}
	return nil
}

func newInstanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
