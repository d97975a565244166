//! SQLite tables and queries, read-only.

use super::{Connector, ConnectorError, ImportSink, SqlConfig};
use crate::model::Schema;

pub struct SqlConnector {
    config: SqlConfig,
}

impl SqlConnector {
    pub fn new(config: SqlConfig) -> SqlConnector {
        SqlConnector { config }
    }
}

impl Connector for SqlConnector {
    fn kind(&self) -> &'static str {
        "sql"
    }
    fn schema(&self) -> Result<Schema, ConnectorError> {
        Err(ConnectorError::Unsupported("sql"))
    }
    fn full_import(&mut self, _sink: &mut dyn ImportSink) -> Result<(), ConnectorError> {
        let _ = &self.config;
        Err(ConnectorError::Unsupported("sql"))
    }
}
