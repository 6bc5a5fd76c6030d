package buffer

// SetFault makes every file operation of b ask fault first and fail with the
// error it returns: "write" (fails after writing half of its bytes, as a
// full disk does), "sync", "truncate", "create", "syncdir" and "cursor".
func SetFault(b *Buffer, fault func(op string) error) {
	b.mu.Lock()
	b.fault = fault
	b.mu.Unlock()
}
