import Policy

/// Names shared by the webhook's components.
public enum WebhookModule {
    /// The `source` recorded in policy attributes for requests that came through admission.
    public static let requestSource = "webhook"
    /// The API version of the policies the webhook enforces.
    public static let policyAPIVersion = PolicyAPI.apiVersion
}
