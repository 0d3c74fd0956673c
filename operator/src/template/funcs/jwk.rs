//! ESO's JWK helpers.
use super::{Ctx, FnError, FnResult};
use crate::template::value::Value;

pub fn jwk_public_key_pem(_: &mut Ctx, _a: Vec<Value>) -> FnResult {
    Err(FnError::msg("not implemented"))
}
pub fn jwk_private_key_pem(_: &mut Ctx, _a: Vec<Value>) -> FnResult {
    Err(FnError::msg("not implemented"))
}
