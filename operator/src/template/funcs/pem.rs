//! ESO's PEM helpers: `filterPEM`, `filterCertChain`, `certSANs`.
use super::{Ctx, FnError, FnResult};
use crate::template::value::Value;

pub fn filter_pem(_: &mut Ctx, _a: Vec<Value>) -> FnResult {
    Err(FnError::msg("not implemented"))
}
pub fn filter_cert_chain(_: &mut Ctx, _a: Vec<Value>) -> FnResult {
    Err(FnError::msg("not implemented"))
}
pub fn cert_sans(_: &mut Ctx, _a: Vec<Value>) -> FnResult {
    Err(FnError::msg("not implemented"))
}
