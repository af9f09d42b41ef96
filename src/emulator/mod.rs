//! placeholder: the emulator module is being written (helper: replace this file freely;
//! the lead's serve.rs calls `start(EmulatorConfig::embedded(catalog))`, `url()`, `api_key()`, `shutdown()`).
use std::sync::Arc;
/// placeholder
pub struct EmulatorConfig;
impl EmulatorConfig {
    /// placeholder
    pub fn embedded(_catalog: Arc<crate::catalog::Catalog>) -> Self {
        Self
    }
}
/// placeholder
pub struct Emulator;
impl Emulator {
    /// placeholder
    pub fn url(&self) -> String {
        unimplemented!()
    }
    /// placeholder
    pub fn api_key(&self) -> &crate::tenet::ApiKey {
        unimplemented!()
    }
    /// placeholder
    pub async fn shutdown(self) {}
}
/// placeholder
pub async fn start(_config: EmulatorConfig) -> Result<Emulator, String> {
    Err("not yet".into())
}
