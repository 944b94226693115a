//! Evidence pages (filled in by the pages work).
