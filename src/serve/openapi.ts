// The OpenAPI 3.1 description of `moco serve`'s routes, served at /v1/openapi.json.
export interface OpenApiLimits {
  maxK: number;
  bodyLimit: number;
  maxPixels: number;
}

const error = { $ref: "#/components/schemas/Error" };
const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: error } } });
const imageBody = {
  required: true,
  content: {
    "image/jpeg": { schema: { type: "string", format: "binary" } },
    "image/png": { schema: { type: "string", format: "binary" } },
    "image/webp": { schema: { type: "string", format: "binary" } },
    "application/octet-stream": { schema: { type: "string", format: "binary" } },
    "multipart/form-data": {
      schema: {
        type: "object",
        properties: { image: { type: "string", format: "binary" } },
        required: ["image"],
      },
    },
  },
};
const imageErrors = {
  "400": errorResponse("bad request: an image that does not decode (e.g. truncated), a bad k, no image"),
  "401": errorResponse("an access token is required"),
  "413": errorResponse("the body is too large, or the image has too many pixels"),
  "415": errorResponse("not a JPEG, PNG or WebP image (by its magic bytes), or an unsupported Content-Type"),
  "503": errorResponse("the inference queue is full or the server is closing: retry after Retry-After seconds"),
};

export function openApiDocument(limits: OpenApiLimits): Record<string, unknown> {
  const k = {
    name: "k",
    in: "query",
    description: "neighbours to return (also a multipart or JSON field)",
    schema: { type: "integer", minimum: 1, maximum: limits.maxK, default: 10 },
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "moco serve",
      version: "1",
      description:
        `Embeddings and similar-image search over an index made by moco embed. Bodies up to ${limits.bodyLimit} bytes, ` +
        `images up to ${limits.maxPixels} pixels; the image format is read from the bytes, not the Content-Type. ` +
        "Errors are JSON { error: { code, message } }.",
    },
    components: {
      schemas: {
        Error: {
          type: "object",
          properties: {
            error: {
              type: "object",
              properties: { code: { type: "string" }, message: { type: "string" } },
              required: ["code", "message"],
            },
          },
        },
        Hit: {
          type: "object",
          properties: {
            rank: { type: "integer" },
            row: { type: "integer" },
            id: { type: "string" },
            score: { type: "number", description: "cosine similarity" },
            label: { type: ["integer", "null"] },
            className: { type: ["string", "null"] },
          },
        },
      },
      securitySchemes: { token: { type: "http", scheme: "bearer" } },
    },
    security: [{}, { token: [] }],
    paths: {
      "/v1/health": { get: { summary: "liveness", responses: { "200": { description: "{ status: ok, count }" } } } },
      "/v1/info": {
        get: {
          summary: "the encoder, its preprocessing, the index size, limits",
          responses: { "200": { description: "info" } },
        },
      },
      "/v1/openapi.json": { get: { summary: "this document", responses: { "200": { description: "OpenAPI 3.1" } } } },
      "/v1/embed": {
        post: {
          summary: "the L2-normalised embedding of an image",
          requestBody: imageBody,
          responses: {
            "200": {
              description: "the embedding",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: { dim: { type: "integer" }, embedding: { type: "array", items: { type: "number" } } },
                  },
                },
              },
            },
            ...imageErrors,
          },
        },
      },
      "/v1/search": {
        post: {
          summary: "the k indexed images most similar to an image, or to an indexed image given by id",
          parameters: [
            k,
            {
              name: "id",
              in: "query",
              description: "an indexed image's id instead of an image",
              schema: { type: "string" },
            },
          ],
          requestBody: {
            ...imageBody,
            content: {
              ...imageBody.content,
              "application/json": {
                schema: {
                  type: "object",
                  properties: { id: { type: "string" }, k: { type: "integer" } },
                  required: ["id"],
                },
              },
            },
          },
          responses: {
            "200": {
              description: "the neighbours, most similar first",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: {
                      k: { type: "integer" },
                      hits: { type: "array", items: { $ref: "#/components/schemas/Hit" } },
                    },
                  },
                },
              },
            },
            "404": errorResponse("no indexed image has that id"),
            ...imageErrors,
          },
        },
      },
      "/v1/index": {
        post: {
          summary: "add images to the index (durable once answered: an fsync'ed append-only log)",
          parameters: [
            {
              name: "id",
              in: "query",
              description: "the id of the one image added (default added/<hash>.<ext>)",
              schema: { type: "string" },
            },
            { name: "label", in: "query", description: "its class index", schema: { type: "integer", minimum: 0 } },
          ],
          requestBody: imageBody,
          responses: {
            "201": { description: "{ added: [{ id, row }], count }" },
            "409": errorResponse("the server runs another encoder than the index's own"),
            ...imageErrors,
          },
        },
      },
      "/v1/map": {
        get: {
          summary: "2-D map of the index: its first two principal components, on an evenly spaced sample",
          parameters: [
            { name: "points", in: "query", schema: { type: "integer", minimum: 1, maximum: 20000, default: 2000 } },
          ],
          responses: { "200": { description: "{ points: [{ row, x, y, label, id, className }], count, explained }" } },
        },
      },
      "/v1/images/{row}": {
        get: {
          summary: "a thumbnail (PNG) of an indexed image",
          parameters: [{ name: "row", in: "path", required: true, schema: { type: "integer", minimum: 0 } }],
          responses: {
            "200": { description: "image/png" },
            "404": errorResponse("no such row, or no image stored for it"),
          },
        },
      },
      "/v1/model.onnx": {
        get: {
          summary: "the encoder as ONNX (input: preprocessed float32 [N, C, S, S]; output: L2-normalised embeddings)",
          responses: { "200": { description: "application/octet-stream" } },
        },
      },
    },
  };
}
