//! The report's renderings: HTML, CSV and JSON.
