//! What an RDD's records must be.

/// Records an RDD can hold: serializable (to cross the network and the disk), shareable between
/// an executor's task threads, and clonable (a cached partition is read without being consumed).
pub trait Data:
    Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static
{
}
impl<T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static> Data for T {}
