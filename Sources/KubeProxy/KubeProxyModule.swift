import Policy

/// Names shared by the proxy's components.
public enum KubeProxyModule {
    /// The `source` recorded in policy attributes for requests that came through the proxy.
    public static let requestSource = "proxy"
    /// The API version of the policies the proxy enforces.
    public static let policyAPIVersion = PolicyAPI.apiVersion
}
