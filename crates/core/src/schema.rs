//! JSON Schemas for the wire forms written by hand (hex digests, SS58 keys), so every role's
//! OpenAPI description says exactly what these fields look like on the wire.

use schemars::{json_schema, Schema};

/// The schema of lowercase hex: exactly `bytes` bytes when given, else any even length.
pub fn lower_hex(bytes: Option<usize>, description: &str) -> Schema {
    let pattern = match bytes {
        Some(n) => format!("^[0-9a-f]{{{}}}$", n * 2),
        None => "^([0-9a-f]{2})*$".to_string(),
    };
    json_schema!({
        "type": "string",
        "pattern": pattern,
        "description": description,
    })
}
