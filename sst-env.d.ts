/* Hand-written stand-in for the file `sst deploy` / `sst dev` generate; keep it in sync with sst.config.ts
   (those commands overwrite it with the same shape). Packages pull it in with
   /// <reference path="../../sst-env.d.ts" /> */
/* eslint-disable */
/* deno-fmt-ignore-file */
import "sst"
declare module "sst" {
  export interface Resource {
    "ApiKeys": {
      "type": "sst.sst.Secret"
      "value": string
    }
    "FineTune": {
      "jobDefinition": string
      "jobQueue": string
      "type": "sst.sst.Linkable"
    }
    "Generator": {
      "internalUrl": string
      "type": "sst.sst.Linkable"
      "url": string
    }
    "Storage": {
      "name": string
      "type": "sst.sst.Linkable"
    }
  }
}
export {}
