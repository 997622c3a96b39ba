// The chat page's socket client; see docs/protocol.md.
