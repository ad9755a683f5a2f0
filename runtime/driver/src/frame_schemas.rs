//! The schema of every DataFrame of a session, the step that made each from another, and the
//! DataFrames registered as SQL tables: the books [`crate::frames`] keeps as it adds
//! DataFrames, read by SQL queries and by the cleaner.

use crate::error::DriverError;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use tessera_plan::RddId;
use tessera_plan::frame::{FrameStep, Schema};

/// The schema of every DataFrame of the session, the step that made each from another, and
/// the DataFrames registered as SQL tables.
#[derive(Default)]
pub struct FrameSchemas {
    schemas: Mutex<HashMap<RddId, Schema>>,
    made_by: Mutex<HashMap<RddId, (RddId, FrameStep)>>,
    tables: Mutex<BTreeMap<String, RddId>>,
}

impl FrameSchemas {
    /// The schema of DataFrame `rdd`.
    pub fn get(&self, rdd: RddId) -> Result<Schema, DriverError> {
        self.schemas
            .lock()
            .get(&rdd)
            .cloned()
            .ok_or(DriverError::NotADataFrame(rdd))
    }

    pub(crate) fn insert(&self, rdd: RddId, schema: Schema) {
        self.schemas.lock().insert(rdd, schema);
    }

    /// The DataFrame that DataFrame `rdd` was made from and the step that made it, if a step
    /// made it.
    pub(crate) fn made_by(&self, rdd: RddId) -> Option<(RddId, FrameStep)> {
        self.made_by.lock().get(&rdd).cloned()
    }

    /// Notes that `step` made DataFrame `rdd` from DataFrame `from`.
    pub(crate) fn made(&self, rdd: RddId, from: RddId, step: FrameStep) {
        self.made_by.lock().insert(rdd, (from, step));
    }

    /// The registered tables, by name.
    pub fn tables(&self) -> BTreeMap<String, RddId> {
        self.tables.lock().clone()
    }

    /// Registers DataFrame `rdd` as SQL table `name`, replacing a table of that name.
    pub(crate) fn register_table(&self, name: String, rdd: RddId) {
        self.tables.lock().insert(name, rdd);
    }
}
