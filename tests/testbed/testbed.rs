//! One test per test-bed component, proving each answers for real (SPEC §7): STS
//! through moto, the registry's `/v2/`, terraform (version and an apply of the fixture's
//! root), and a Docker build FROM the local base image through bollard.

use std::io::{Read, Write};
use std::process::Command;

use futures_util::StreamExt;

use crate::support::{Fixture, Testbed};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn moto_answers_sts_get_caller_identity() {
    let _bed = Testbed::get();
    let identity = runtime().block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(deploy::aws::waiting::https_client())
            .load()
            .await;
        aws_sdk_sts::Client::new(&config)
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity against moto")
    });
    let account = identity.account().expect("an account id");
    assert_eq!(account.len(), 12, "{account}");
    assert!(identity.arn().unwrap_or_default().starts_with("arn:aws:"));
}

#[test]
fn registry_answers_v2() {
    let bed = Testbed::get();
    let mut stream = std::net::TcpStream::connect(&bed.registry).expect("registry reachable");
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        bed.registry
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("Docker-Distribution-Api-Version: registry/2.0"),
        "{response}"
    );
}

#[test]
fn terraform_is_recent_enough_and_applies_the_fixture_root() {
    let bed = Testbed::get();
    let version = deploy::terraform::installed_version(&bed.terraform).expect("terraform version");
    assert!(version >= deploy::terraform::MINIMUM_VERSION, "{version}");

    let fixture = Fixture::new();
    let env = crate::support::bootstrap(&bed, &fixture, "sandbox");
    let tag = fixture.short_sha();
    let tf = |args: &[&str]| {
        let mut command = Command::new(&bed.terraform);
        command
            .arg("-chdir=infra/terraform/aws")
            .args(args)
            .current_dir(fixture.root());
        env.configure(&mut command);
        let output = command.output().expect("terraform runs");
        assert!(
            output.status.success(),
            "terraform {args:?}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    tf(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-var-file=tfvars/sandbox.tfvars",
        "-var",
        &format!("image_tag={tag}"),
    ]);
    let outputs: serde_json::Value = serde_json::from_str(&tf(&["output", "-json"])).unwrap();
    assert_eq!(outputs["image_tag"]["value"], tag.as_str());
    assert_eq!(tf(&["workspace", "show"]).trim(), "sandbox");
}

#[test]
fn docker_builds_from_the_local_base_image_through_bollard() {
    let bed = Testbed::get();
    let dockerfile = format!(
        "FROM {}\nRUN echo built-by-bollard > /proof\nCMD [\"cat\", \"/proof\"]\n",
        bed.base_image
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    let context = tar.into_inner().unwrap();
    let tag = format!("deploy-testbed-smoke:{}", std::process::id());

    runtime().block_on(async {
        let docker = bollard::Docker::connect_with_defaults()
            .expect("docker client")
            .negotiate_version()
            .await
            .expect("docker daemon reachable");
        let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(&tag)
            .rm(true)
            .build();
        let mut stream = docker.build_image(
            options,
            None,
            Some(bollard::body_full(bytes::Bytes::from(context))),
        );
        let mut image_id = None;
        while let Some(item) = stream.next().await {
            let info = item.expect("build step");
            if let Some(error) = info.error_detail {
                panic!("build failed: {error:?}");
            }
            if let Some(bollard::models::BuildInfoAux::Default(aux)) = info.aux {
                image_id = aux.id;
            }
        }
        assert!(image_id.is_some(), "the build reports an image id");
        let image = docker.inspect_image(&tag).await.expect("image exists");
        assert_eq!(
            image.config.and_then(|c| c.cmd),
            Some(vec!["cat".to_owned(), "/proof".to_owned()])
        );
        docker
            .remove_image(
                &tag,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
            .expect("remove the smoke image");
    });
}
