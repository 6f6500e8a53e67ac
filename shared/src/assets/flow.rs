//! The asset side of the upload environment: the URLs an asset is shown
//! with and the objects its delete removes. Here rather than in
//! `uploads::flow` so that uploads never need to know assets.

use super::{AssetRecord, AssetStatus, AssetView};
use crate::s3::ObjectError;
use crate::s3::presign::Presigner;
use crate::uploads::flow::UploadEnv;

impl UploadEnv {
    /// Deletes an asset's object and its thumbnail (records stay the
    /// caller's job, after this succeeds).
    pub async fn delete_asset_objects(&self, asset: &AssetRecord) -> Result<(), ObjectError> {
        if let Some(key) = &asset.s3_key {
            self.bucket.delete(key).await?;
        }
        if let Some(thumbnail) = &asset.thumbnail_key {
            self.bucket.delete(thumbnail).await?;
        }
        Ok(())
    }

    /// An asset as the API shows it, with URLs for its object and thumbnail.
    pub fn asset_view(&self, signer: &Presigner, asset: AssetRecord, box_name: &str) -> AssetView {
        // A pending or failed import has no object.
        let file_url = match &asset.s3_key {
            Some(key) if asset.status != AssetStatus::Pending => {
                Some(self.object_url(signer, key, &asset.name))
            }
            _ => None,
        };
        let thumbnail_url = asset
            .thumbnail_key
            .as_deref()
            .map(|key| self.object_url(signer, key, "thumbnail.jpg"));
        AssetView::new(asset, box_name, file_url, thumbnail_url)
    }
}
