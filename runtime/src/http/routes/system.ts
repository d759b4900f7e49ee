import { productName, version } from "../../version";
import { defineRoutes, publicAccess } from "../route";

export const systemRoutes = defineRoutes([
  {
    method: "GET",
    path: "/health",
    access: publicAccess,
    handle: async (_req, res) => {
      res.json({ status: "healthy", version });
    },
  },
  {
    method: "GET",
    path: "/info",
    access: publicAccess,
    handle: async (_req, res, runtime) => {
      res.json({ name: productName, version, environment: runtime.env.HYBRID_CICD_ENVIRONMENT });
    },
  },
]);
