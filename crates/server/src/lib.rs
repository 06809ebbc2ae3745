//! Ferry's HTTP and WebSocket edge.
