//! ESO's PKCS#12 helpers.
use super::{Ctx, FnError, FnResult};
use crate::template::value::Value;

macro_rules! todo_fn { ($($n:ident),*) => { $(pub fn $n(_: &mut Ctx, _a: Vec<Value>) -> FnResult { Err(FnError::msg("not implemented")) })* } }
todo_fn!(
    pkcs12key,
    pkcs12key_pass,
    pkcs12cert,
    pkcs12cert_pass,
    pem_to_pkcs12,
    pem_to_pkcs12_pass,
    full_pem_to_pkcs12,
    full_pem_to_pkcs12_pass,
    pem_truststore_to_pkcs12,
    pem_truststore_to_pkcs12_pass
);
