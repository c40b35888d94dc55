/** What other parts may use from models/mot/ (the registry builds it from `backbone: mot`). */
export {
  MOT_UNTIE_CHOICES,
  type ModalityName,
  type MotConfig,
  MotPolicy,
  type MotUntie,
  TEXT_MODALITIES,
  validateMotConfig,
} from "./mot.ts";
