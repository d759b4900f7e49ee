// This repository's own stack program (Pulumi.yaml `main`): the same package entry another team
// installs (`@hybrid-cicd/platform`, built by `npm run build -w platform`), run by plain node.
// One ControlPlane configured by the stack's `hybrid-cicd:*` settings (Pulumi.<stack>.yaml).
import { controlPlaneStack } from "@hybrid-cicd/platform";

export default controlPlaneStack;
