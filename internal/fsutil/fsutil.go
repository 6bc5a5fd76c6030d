// Package fsutil holds the file-system steps that durability depends on,
// written once: a rename or a new file is only durable once the directory
// that names it is fsynced as well.
package fsutil

import (
	"fmt"
	"os"
)

// SyncDir fsyncs the directory dir, making the creation, rename or removal
// of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
