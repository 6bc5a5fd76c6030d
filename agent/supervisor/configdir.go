package supervisor

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxConfigFileBytes bounds one config file: a collection config is a few
// KiB; anything this large is a mistake (a log file dropped into the config
// directory), not a config.
const maxConfigFileBytes = 4 << 20

// ConfigFile is one file of the local config directory as last read.
type ConfigFile struct {
	// Path is the file's path.
	Path string
	// Data is the file content (nil when Err is set).
	Data []byte
	// Hash identifies the content, so an unchanged file is not re-applied.
	Hash [32]byte
	// Err reports why the file could not be read (zero Hash: retried on
	// every pass) or why its content was refused (non-zero Hash: reported
	// once, until the content changes).
	Err error
}

// ScanConfigDir reads every *.json file directly in dir, sorted by name.
// Files that cannot be read are returned with Err set, so one bad file is
// reported while the others still apply. A missing directory is an error: the
// agent was told to watch it.
func ScanConfigDir(dir string) ([]ConfigFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read config directory %s: %w", dir, err)
	}
	var out []ConfigFile
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue // editors' swap and temp files
		}
		path := filepath.Join(dir, name)
		info, err := os.Stat(path) // follows symlinks: ConfigMap volumes are symlink farms
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed between ReadDir and Stat
			}
			out = append(out, ConfigFile{Path: path, Err: err})
			continue
		}
		if info.IsDir() {
			continue
		}
		if info.Size() > maxConfigFileBytes {
			out = append(out, ConfigFile{Path: path, Err: fmt.Errorf("config file %s is %d bytes, more than the %d a collection config can be: is it a log file?", path, info.Size(), maxConfigFileBytes)})
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			out = append(out, ConfigFile{Path: path, Err: err})
			continue
		}
		out = append(out, ConfigFile{Path: path, Data: data, Hash: sha256.Sum256(data)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
