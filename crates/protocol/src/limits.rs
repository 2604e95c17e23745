//! Size limits for what clients send. Defaults follow Sentry's documented limits; every one is
//! configurable. Exceeding a size limit is a typed error that the HTTP layer answers with 413.

/// Byte and depth limits applied while reading a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest request body as sent on the wire (before decompression).
    pub max_body_bytes: usize,
    /// Largest envelope or store body after decompression.
    pub max_decompressed_bytes: usize,
    /// Largest single event or transaction (item payload, or store body), decompressed.
    pub max_event_bytes: usize,
    /// Largest attachment item.
    pub max_attachment_bytes: usize,
    /// Deepest JSON nesting accepted in an event.
    pub max_json_depth: usize,
    /// Most items in one envelope.
    pub max_envelope_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 20 * 1024 * 1024,
            max_decompressed_bytes: 100 * 1024 * 1024,
            max_event_bytes: 1024 * 1024,
            max_attachment_bytes: 20 * 1024 * 1024,
            max_json_depth: 64,
            max_envelope_items: 1000,
        }
    }
}
