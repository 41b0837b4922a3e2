/// The Kubernetes API group and version of Portcullis's own resources (`AccessPolicy`,
/// `AccessRequest`), shared by the proxy, the webhook and the manifests.
public enum PolicyAPI {
    public static let group = "portcullis.dev"
    public static let version = "v1alpha1"
    public static var apiVersion: String { "\(group)/\(version)" }
}
