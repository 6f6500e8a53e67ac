// A front end's calls, typed from the generated client (generated/api.ts,
// made from /openapi.json by openapi-typescript). tests/openapi.rs
// type-checks it with `tsc --noEmit`: a document that loses a parameter, a
// field or an enum makes this fail to compile.
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/api";

type Asset = components["schemas"]["AssetView"];

const api = createClient<paths>({
  baseUrl: "http://127.0.0.1:3000",
  headers: { Authorization: "Bearer <access token>" },
});

/** The favourite completed images of a box whose prompt mentions a word. */
export async function favouriteImages(box: string, cursor?: string): Promise<Asset[]> {
  const { data, error } = await api.GET("/api/assets/", {
    params: {
      query: {
        box,
        asset_type: "IMAGE",
        status: "COMPLETED",
        is_favorite: true,
        search: "sunset",
        limit: 50,
        cursor,
      },
    },
  });
  if (error) {
    // 400 and 404 carry the API's error body, 401 the gateway's.
    const why: string = "error" in error ? error.error.message : error.message;
    throw new Error(why);
  }
  const next: string | null = data.next_cursor;
  const urls: (string | null)[] = data.results.map((a) => a.file_url);
  void urls;
  return next ? [...data.results, ...(await favouriteImages(box, next))] : data.results;
}

/** Starts a 12 MiB direct upload of a video into a box. */
export async function startUpload(box: string): Promise<string[]> {
  const { data, error } = await api.POST("/v1/files/uploads", {
    body: {
      file_name: "Szene 1.mp4",
      file_size: 12582912,
      file_content_type: "video/mp4",
      num_parts: 3,
      part_size: 5242880,
      parent_content_type: "box",
      parent_object_id: box,
      checksum_algorithm: "CRC32",
      checksum_type: "FULL_OBJECT",
    },
  });
  if (error) {
    const fields: Record<string, string> | undefined =
      "error" in error ? error.error.fields : undefined;
    throw new Error(JSON.stringify(fields));
  }
  const status: "uploading" | "pending" | "completed" | "aborted" | "expired" | "failed" =
    data.upload_status;
  const more: string | null = data.next_parts_url;
  void status;
  void more;
  return data.presigned_urls.map((p) => `${p.part_number}: ${p.url}`);
}

/** The public view of a share link: each box's headliner picture. */
export async function sharedHeadliners(token: string): Promise<Map<string, string | null>> {
  const { data, error } = await api.GET("/api/shared/{token}/", {
    params: { path: { token } },
  });
  if (error) {
    throw new Error(error.error.code);
  }
  const expires: string = data.expires_at;
  void expires;
  return new Map(
    data.boxes.map((b) => [b.name, b.headliner ? (b.headliner.thumbnail_url ?? b.headliner.file_url) : null]),
  );
}

/** The image models a generation form offers, and a generation with one. */
export async function generateInto(box: string): Promise<string> {
  const models = await api.GET("/api/ai/models/");
  if (models.error) {
    throw new Error(models.error.message);
  }
  const image = models.data.results.find((m) => m.kind === "image");
  if (!image) {
    throw new Error("no image model");
  }
  const schema: Record<string, unknown> = image.params_schema;
  void schema;
  const { data, error } = await api.POST("/api/boxes/{id}/generate/", {
    params: { path: { id: box }, header: { "Idempotency-Key": "5f0c6b7e-generate-1" } },
    body: { ai_model: image.id, prompt_text: "a red fox in snow", params: { width: 640 }, seed: 7 },
  });
  if (error) {
    // 429 at the running cap; 422 for a model or parent that cannot be used.
    throw new Error("error" in error ? error.error.message : error.message);
  }
  const state: "PENDING" | "PROCESSING" | "COMPLETED" | "FAILED" = data.status;
  const job = data.generation;
  const attempts: number | undefined = job?.attempts;
  void state;
  void attempts;
  return data.id;
}

// What the types must refuse (each line is an error, or tsc fails on an
// unused @ts-expect-error):
export function refused(): void {
  // @ts-expect-error asset_type is IMAGE or VIDEO
  void api.GET("/api/assets/", { params: { query: { asset_type: "AUDIO" } } });
  // @ts-expect-error no such query parameter
  void api.GET("/api/assets/", { params: { query: { colour: "red" } } });
  // @ts-expect-error limit is a number
  void api.GET("/api/assets/", { params: { query: { limit: "many" } } });
  // @ts-expect-error the token is a required path parameter
  void api.GET("/api/shared/{token}/", { params: { path: {} } });
  // @ts-expect-error prompt_text is required to generate
  void api.POST("/api/boxes/{id}/generate/", { params: { path: { id: "b" } }, body: { ai_model: "m" } });
  // @ts-expect-error num_parts is required
  void api.POST("/v1/files/uploads", { body: { file_name: "a.png", file_size: 1, file_content_type: "image/png", part_size: 1 } });
}
