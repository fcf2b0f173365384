class ValidationError extends Error {}
module.exports = async function validate() {
  throw new ValidationError('width must be positive');
};
