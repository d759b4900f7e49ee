import type { Permission } from "@hybrid-cicd/runtime/identity/permissions";
import { useRouteLoaderData } from "@remix-run/react";
import type { loader as rootLoader } from "../root";
import type { Viewer } from "./auth.server";

/** The signed-in user as the root loader saw them (null on the sign-in page). */
export function useViewer(): Viewer | null {
  return useRouteLoaderData<typeof rootLoader>("root")?.viewer ?? null;
}

/** Whether the signed-in user's role holds `permission`: a button that would 403 is not shown. */
export function useCan(permission: Permission): boolean {
  return useViewer()?.permissions.includes(permission) ?? false;
}
