// The part of the configuration the model reads: which labels, annotations and secret it looks at.
import type { Config } from '../types.js';

export type ModelConfig = Pick<
  Config,
  | 'hostsAnnotation'
  | 'pathsAnnotation'
  | 'orgLabel'
  | 'envLabel'
  | 'appNameLabel'
  | 'appRevLabel'
  | 'apiKeySecretName'
  | 'apiKeySecretField'
  | 'routeUnreadyPods'
>;

export function modelConfigFrom(config: Config): ModelConfig {
  return {
    hostsAnnotation: config.hostsAnnotation,
    pathsAnnotation: config.pathsAnnotation,
    orgLabel: config.orgLabel,
    envLabel: config.envLabel,
    appNameLabel: config.appNameLabel,
    appRevLabel: config.appRevLabel,
    apiKeySecretName: config.apiKeySecretName,
    apiKeySecretField: config.apiKeySecretField,
    routeUnreadyPods: config.routeUnreadyPods,
  };
}
