//! AWS regions as Atlas names them (`US_EAST_1`) and as AWS does (`us-east-1`).

/// The "AWS Regions" enum of the official spec.
pub const AWS_REGIONS: &[&str] = &[
    "US_GOV_WEST_1",
    "US_GOV_EAST_1",
    "US_EAST_1",
    "US_EAST_2",
    "US_WEST_1",
    "US_WEST_2",
    "CA_CENTRAL_1",
    "EU_NORTH_1",
    "EU_WEST_1",
    "EU_WEST_2",
    "EU_WEST_3",
    "EU_CENTRAL_1",
    "EU_CENTRAL_2",
    "AP_EAST_1",
    "AP_EAST_2",
    "AP_NORTHEAST_1",
    "AP_NORTHEAST_2",
    "AP_NORTHEAST_3",
    "AP_SOUTHEAST_1",
    "AP_SOUTHEAST_2",
    "AP_SOUTHEAST_3",
    "AP_SOUTHEAST_4",
    "AP_SOUTHEAST_5",
    "AP_SOUTHEAST_6",
    "AP_SOUTHEAST_7",
    "AP_SOUTH_1",
    "AP_SOUTH_2",
    "SA_EAST_1",
    "CN_NORTH_1",
    "CN_NORTHWEST_1",
    "ME_SOUTH_1",
    "ME_CENTRAL_1",
    "AF_SOUTH_1",
    "EU_SOUTH_1",
    "EU_SOUTH_2",
    "IL_CENTRAL_1",
    "CA_WEST_1",
    "MX_CENTRAL_1",
    "GLOBAL",
];

pub fn is_atlas_region(name: &str) -> bool {
    AWS_REGIONS.contains(&name)
}

/// `US_EAST_1` → `us-east-1`; `None` for `GLOBAL`, which names no AWS region.
pub fn to_aws(atlas: &str) -> Option<String> {
    if !is_atlas_region(atlas) || atlas == "GLOBAL" {
        return None;
    }
    Some(atlas.to_ascii_lowercase().replace('_', "-"))
}

/// `us-east-1` → `US_EAST_1`, if Atlas knows the region.
pub fn from_aws(aws: &str) -> Option<String> {
    let name = aws.to_ascii_uppercase().replace('-', "_");
    is_atlas_region(&name).then_some(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn maps_both_ways() {
        assert_eq!(super::to_aws("US_EAST_1").as_deref(), Some("us-east-1"));
        assert_eq!(super::to_aws("AP_SOUTHEAST_7").as_deref(), Some("ap-southeast-7"));
        assert_eq!(super::to_aws("GLOBAL"), None);
        assert_eq!(super::to_aws("us-east-1"), None);
        assert_eq!(super::from_aws("eu-west-3").as_deref(), Some("EU_WEST_3"));
    }
}
