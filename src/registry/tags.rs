//! The tags of one repository (`GET /v2/<repository>/tags/list`, followed page by page
//! through its `Link` header), for the registry build cache's choice of earlier images.

use anyhow::{bail, Result};
use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::client::{self, RegistryClient};

/// Tags asked per page.
const PAGE: usize = 1000;
/// Pages followed at most: a repository of more tags is read in part.
const MAX_PAGES: usize = 10;
/// Bytes of one page read at most.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The tags of `repository` (none when the registry does not know it).
pub async fn list(registry: &RegistryClient, repository: &str) -> Result<Vec<String>> {
    let mut tags = Vec::new();
    let mut path = format!("{repository}/tags/list?n={PAGE}");
    for _ in 0..MAX_PAGES {
        let url = registry.url(&path);
        let response = registry.send(Method::GET, &url, &[], None).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(tags),
            _ => bail!("GET {url}: {}", client::error_text(response).await),
        }
        let next = client::header(&response, "link").and_then(|link| next_page(&link));
        let bytes = client::read_limited(response, MAX_PAGE_BYTES).await?;
        let page: TagList = serde_json::from_slice(&bytes)
            .map_err(|err| anyhow::anyhow!("GET {url}: not a tag list: {err}"))?;
        tags.extend(page.tags.unwrap_or_default());
        match next {
            Some(next) => path = next,
            None => break,
        }
    }
    Ok(tags)
}

/// The path after `/v2/` of a `Link: </v2/name/tags/list?last=x&n=1000>; rel="next"`.
fn next_page(link: &str) -> Option<String> {
    let start = link.find('<')? + 1;
    let end = link[start..].find('>')? + start;
    if !link[end..].contains("rel=\"next\"") {
        return None;
    }
    let target = &link[start..end];
    let path = match target.find("/v2/") {
        Some(at) => &target[at + 4..],
        None => return None,
    };
    Some(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        assert_eq!(
            next_page("</v2/team/api/tags/list?last=abc&n=1000>; rel=\"next\"").as_deref(),
            Some("team/api/tags/list?last=abc&n=1000")
        );
        assert_eq!(
            next_page("<https://r.example/v2/api/tags/list?n=2&last=b>; rel=\"next\"").as_deref(),
            Some("api/tags/list?n=2&last=b")
        );
        assert_eq!(next_page("</v2/api/tags/list?n=2>; rel=\"prev\""), None);
        assert_eq!(next_page("garbage"), None);
    }
}
