//! Delimited files.

use super::{Connector, ConnectorError, CsvConfig, ImportSink};
use crate::model::Schema;

pub struct CsvConnector {
    config: CsvConfig,
}

impl CsvConnector {
    pub fn new(config: CsvConfig) -> CsvConnector {
        CsvConnector { config }
    }
}

impl Connector for CsvConnector {
    fn kind(&self) -> &'static str {
        "csv"
    }
    fn schema(&self) -> Result<Schema, ConnectorError> {
        Err(ConnectorError::Unsupported("csv"))
    }
    fn full_import(&mut self, _sink: &mut dyn ImportSink) -> Result<(), ConnectorError> {
        let _ = &self.config;
        Err(ConnectorError::Unsupported("csv"))
    }
}
