//! Proves the harness is real: namespaces, Secrets, ServiceAccount tokens from the TokenRequest API, and
//! TokenReview of those tokens by the same kube-apiserver.
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use syncret_tests::ControlPlane;

#[tokio::test]
async fn namespace_secret_and_service_account_token_round_trip() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("harness").await?;

    let secrets: Api<Secret> = ns.api();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("hello".into()),
            ..Default::default()
        },
        string_data: Some([("greeting".to_string(), "hi".to_string())].into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;
    let got = secrets.get("hello").await?;
    assert_eq!(got.data.unwrap()["greeting"].0, b"hi");

    let sas: Api<ServiceAccount> = ns.api();
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("app".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    sas.create(&PostParams::default(), &sa).await?;
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["syncret-test".into()]),
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = sas.create_token_request("app", &PostParams::default(), &req).await?;
    let token = token.status.expect("TokenRequest status").token.expect("token");
    assert!(token.split('.').count() == 3, "a JWT");

    let reviews: Api<TokenReview> = Api::all(ns.client.clone());
    let review = TokenReview {
        spec: TokenReviewSpec {
            token,
            audiences: Some(vec!["syncret-test".into()]),
        },
        ..Default::default()
    };
    let review = reviews.create(&PostParams::default(), &review).await?;
    let status = review.status.expect("TokenReview status");
    assert_eq!(status.authenticated, Some(true), "error: {:?}", status.error);
    let user = status.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some(format!("system:serviceaccount:{}:app", ns.name).as_str())
    );
    Ok(())
}
